// cloud-init user data for the EC2 hosts. Pure: everything it needs comes in as arguments.
import { dump } from "js-yaml";
import type { Relay, Topology } from "../topology/schema";
import { MAILBOX_UID, renderEtrnScript, renderPrimaryPostfix } from "./primary-postfix";
import { RECIPIENTS_PATH, envFile, recipientsFile, relayEnvironment } from "./relay-env";

export const RELAY_IMAGE_TAG = "mailcontinuity-relay:latest";
export const MAIL_MOUNT = "/var/mail";
export const ETRN_INTERVAL = "5min";

interface WriteFile {
    path: string;
    content: string;
    permissions?: string;
}

function cloudConfig(doc: Record<string, unknown>): string {
    return `#cloud-config\n${dump(doc, { lineWidth: -1 })}`;
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface PrimaryCloudInitOptions {
    relayAddresses: readonly string[];
    /** EBS volume id (vol-…): the disk is found by its serial, whatever name the kernel gives it. */
    mailVolumeId: string;
}

export function renderPrimaryCloudInit(topology: Topology, options: PrimaryCloudInitOptions): string {
    const postfix = renderPrimaryPostfix(topology, { relayAddresses: options.relayAddresses });
    const serial = options.mailVolumeId.replace("-", "");
    const postconf = postfix.mainCf.map(([k, v]) => `postconf -e ${shellQuote(`${k}=${v}`)}`);
    const files: WriteFile[] = [
        ...Object.entries(postfix.tables).map(([name, content]) => ({ path: `/etc/postfix/${name}`, content })),
        { path: "/usr/local/sbin/etrn-relays", content: renderEtrnScript(topology), permissions: "0755" },
        { path: "/usr/local/sbin/mailcontinuity-postconf", content: ["#!/bin/sh", "set -e", ...postconf, ""].join("\n"), permissions: "0755" },
        {
            path: "/usr/local/sbin/mailcontinuity-mount-mail",
            permissions: "0755",
            content: [
                "#!/bin/sh",
                "# Formats the mail volume on first boot only, then mounts it where mailboxes live.",
                "set -e",
                `dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}`,
                'for i in $(seq 60); do [ -e "$dev" ] && break; sleep 2; done',
                'blkid "$dev" >/dev/null || mkfs.ext4 -L mail "$dev"',
                `mkdir -p ${MAIL_MOUNT}`,
                `grep -q 'LABEL=mail' /etc/fstab || echo 'LABEL=mail ${MAIL_MOUNT} ext4 defaults,nofail 0 2' >> /etc/fstab`,
                `mountpoint -q ${MAIL_MOUNT} || mount ${MAIL_MOUNT}`,
                "",
            ].join("\n"),
        },
        {
            path: "/etc/systemd/system/etrn-relays.service",
            content: "[Unit]\nDescription=Ask the backup MX relays to flush mail queued for us\nAfter=postfix.service network-online.target\nWants=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/etrn-relays\n",
        },
        {
            path: "/etc/systemd/system/etrn-relays.timer",
            content: `[Unit]\nDescription=ETRN the relays at boot and every ${ETRN_INTERVAL}\n\n[Timer]\nOnBootSec=30s\nOnUnitActiveSec=${ETRN_INTERVAL}\n\n[Install]\nWantedBy=timers.target\n`,
        },
        {
            path: "/etc/dovecot/conf.d/99-mailcontinuity.conf",
            content: [
                "# Dovecot reads the Maildirs Postfix's virtual(8) delivers to. Users: /etc/dovecot/users (manual).",
                "protocols = imap",
                "ssl = required",
                `mail_location = maildir:/var/mail/vhosts/%d/%n`,
                "passdb {\n  driver = passwd-file\n  args = scheme=ARGON2ID username_format=%u /etc/dovecot/users\n}",
                `userdb {\n  driver = static\n  args = uid=${MAILBOX_UID} gid=${MAILBOX_UID} home=/var/mail/vhosts/%d/%n\n}`,
                "",
            ].join("\n"),
        },
    ];
    return cloudConfig({
        bootcmd: ["echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections", `echo 'postfix postfix/mailname string ${topology.primary.hostname}' | debconf-set-selections`],
        package_update: true,
        packages: ["postfix", "dovecot-imapd", "ssl-cert"],
        write_files: files,
        runcmd: [
            "/usr/local/sbin/mailcontinuity-mount-mail",
            `getent group vmail || groupadd -g ${MAILBOX_UID} vmail`,
            `getent passwd vmail || useradd -u ${MAILBOX_UID} -g vmail -d /var/mail/vhosts -s /usr/sbin/nologin vmail`,
            "install -d -o vmail -g vmail /var/mail/vhosts",
            "touch /etc/dovecot/users && chmod 0640 /etc/dovecot/users && chgrp dovecot /etc/dovecot/users",
            `hostnamectl set-hostname ${topology.primary.hostname}`,
            "/usr/local/sbin/mailcontinuity-postconf",
            "postfix check",
            "systemctl restart postfix dovecot",
            "systemctl daemon-reload",
            "systemctl enable --now etrn-relays.timer",
        ],
    });
}

/** An EC2 relay: Docker from Debian, the relay image built on the host from its own files. */
export function renderRelayCloudInit(topology: Topology, relay: Relay, imageFiles: Record<string, string>): string {
    const files: WriteFile[] = [
        ...Object.entries(imageFiles).map(([name, content]) => ({
            path: `/opt/relay-image/${name}`,
            content,
            ...(name.endsWith(".sh") ? { permissions: "0755" } : {}),
        })),
        { path: RECIPIENTS_PATH, content: recipientsFile(topology) },
        { path: "/etc/relay/relay.env", content: envFile(relayEnvironment(topology, relay)), permissions: "0600" },
    ];
    return cloudConfig({
        package_update: true,
        packages: ["docker.io"],
        write_files: files,
        runcmd: [
            `hostnamectl set-hostname ${relay.hostname}`,
            "systemctl enable --now docker",
            `docker build -t ${RELAY_IMAGE_TAG} /opt/relay-image`,
            "docker volume create relay-queue",
            `docker run -d --name relay --restart unless-stopped -p 25:25 -v relay-queue:/var/spool/postfix -v /etc/relay:/etc/relay:ro --env-file /etc/relay/relay.env ${RELAY_IMAGE_TAG}`,
        ],
    });
}
