// The CrossGuard pack: `pulumi preview --policy-pack policy/` (README: Policy pack). The rules are in
// rules.ts, where the tests call them without the Pulumi CLI.
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./rules";

new PolicyPack("mailcontinuity-mail-safety", {
    description: "Mail safety for mailcontinuity stacks: DNS served alike by both providers, mail records unproxied, SSH from the admin range only, encrypted and protected mail disks, relays away from the primary's region.",
    enforcementLevel: "mandatory",
    policies,
});
