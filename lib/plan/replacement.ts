// What each provider does when an input of a resource this stack declares changes. Read from the
// providers' own schemas (ForceNew / RequiresReplace) and SDK doc comments; every entry names its
// source. Inputs not listed update in place. The offline diff (lib/plan/diff.ts) decides create,
// update, stop/start, replace and delete from this table and the resource options the program sets.

export interface ReplacementRule {
    /** Top-level inputs (or dotted paths below them) whose change replaces the resource. */
    replaceOn: string[];
    /** Inputs whose change is applied by stopping and starting the resource (downtime, no replacement). */
    stopStartOn?: string[];
    /** Where this comes from. */
    source: string;
}

const TF_AWS = "hashicorp/terraform-provider-aws internal/service";

export const REPLACEMENT_RULES: Record<string, ReplacementRule> = {
    "aws:ec2/instance:Instance": {
        // instanceType also replaces when the old and new types share no architecture (t3 -> t4g): see diff.ts.
        // ipv6AddressCount (placement.ipv6) updates in place: AssignIpv6Addresses/UnassignIpv6Addresses on the
        // primary network interface, no stop (hashicorp/terraform-provider-aws#36308, v5.41, which closed #33707
        // "Adding ipv6_address_count forces replacement"; #43158 recomputes ipv6_addresses after it). An
        // explicit ipv6Addresses list still replaces (ForceNewIf); the stack never sets one.
        replaceOn: ["ami", "availabilityZone", "subnetId", "rootBlockDevice.encrypted", "rootBlockDevice.kmsKeyId", "keyName", "privateIp", "ipv6Addresses"],
        stopStartOn: ["instanceType", "userData", "userDataBase64"],
        source: `${TF_AWS}/ec2/ec2_instance.go (ForceNew; customdiff.ForceNewIf instance_type on no common architecture, and ipv6_addresses when given; ipv6_address_count, iam_instance_profile and metadata_options in place, AssignIpv6Addresses, AssociateIamInstanceProfile and ModifyInstanceMetadataOptions); SDK instance.d.ts: "Updates to this field will trigger a stop/start of the EC2 instance"`,
    },
    "aws:ebs/volume:Volume": {
        replaceOn: ["availabilityZone", "encrypted", "kmsKeyId", "snapshotId", "multiAttachEnabled"],
        source: `${TF_AWS}/ec2/ebs_volume.go (ForceNew, snapshot_id too: a restore is a new volume; size and type go through ModifyVolume, tags UpdateTags in place)`,
    },
    "aws:ec2/volumeAttachment:VolumeAttachment": {
        replaceOn: ["deviceName", "instanceId", "volumeId"],
        source: `${TF_AWS}/ec2/ebs_volume_attachment.go (ForceNew; stopInstanceBeforeDetaching is read from state at delete)`,
    },
    "aws:ec2/eip:Eip": { replaceOn: ["domain"], source: `${TF_AWS}/ec2/ec2_eip.go (domain ForceNew: a new address)` },
    "aws:ec2/eipAssociation:EipAssociation": {
        replaceOn: ["allocationId", "instanceId", "networkInterfaceId", "privateIpAddress", "publicIp", "allowReassociation"],
        source: `${TF_AWS}/ec2/ec2_eip_association.go (no Update: every input ForceNew)`,
    },
    "aws:ec2/eipDomainName:EipDomainName": {
        replaceOn: ["allocationId"],
        source: `${TF_AWS}/ec2/ec2_eip_domain_name.go (allocation_id RequiresReplace; domain_name ModifyAddressAttribute)`,
    },
    "aws:dlm/lifecyclePolicy:LifecyclePolicy": {
        // Schedule, retention, cross-region copies, target tags and role: UpdateLifecyclePolicy in place.
        replaceOn: ["policyDetails.schedules.0.copyTags"],
        source: `${TF_AWS}/dlm/lifecycle_policy.go (only policy_details.schedule.copy_tags ForceNew; the rest UpdateLifecyclePolicy, tags UpdateTags)`,
    },
    "aws:iam/role:Role": {
        replaceOn: ["name", "namePrefix", "path"],
        source: `${TF_AWS}/iam/role.go (name, name_prefix, path ForceNew; assume_role_policy UpdateAssumeRolePolicy, description UpdateRoleDescription)`,
    },
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {
        replaceOn: ["role", "policyArn"],
        source: `${TF_AWS}/iam/role_policy_attachment.go (no Update: role and policy_arn ForceNew)`,
    },
    "aws:iam/instanceProfile:InstanceProfile": {
        // The instance names its profile: a new one (new name) is an in-place association change of the instance.
        replaceOn: ["name", "namePrefix", "path"],
        source: `${TF_AWS}/iam/instance_profile.go (name, name_prefix, path ForceNew; role RemoveRoleFromInstanceProfile/AddRoleToInstanceProfile in place)`,
    },
    "aws:iam/rolePolicy:RolePolicy": {
        replaceOn: ["name", "namePrefix", "role"],
        source: `${TF_AWS}/iam/role_policy.go (name, name_prefix, role ForceNew; policy PutRolePolicy in place)`,
    },
    "aws:iam/user:User": {
        replaceOn: [],
        source: `${TF_AWS}/iam/user.go (name and path UpdateUser, permissions_boundary and tags in place: nothing ForceNew)`,
    },
    "aws:iam/userPolicy:UserPolicy": {
        replaceOn: ["name", "namePrefix", "user"],
        source: `${TF_AWS}/iam/user_policy.go (name, name_prefix, user ForceNew; policy PutUserPolicy in place)`,
    },
    "aws:iam/accessKey:AccessKey": {
        // A new key is a new secret: whatever holds the old one (a relay container's environment) follows it.
        replaceOn: ["user", "pgpKey"],
        source: `${TF_AWS}/iam/access_key.go (user, pgp_key ForceNew; status UpdateAccessKey in place)`,
    },
    "aws:route53/record:Record": {
        // type: in place in most provider versions (one atomic DELETE+CREATE batch), ForceNew in some v6
        // releases; treated as a replacement to be safe. This stack never changes a record's type.
        replaceOn: ["zoneId", "name", "type", "setIdentifier"],
        source: `${TF_AWS}/route53/record.go (zone_id, name ForceNew; ttl and records UPSERT in place)`,
    },
    "aws:route53/zone:Zone": { replaceOn: ["name", "delegationSetId"], source: `${TF_AWS}/route53/zone.go (name ForceNew: new nameservers)` },
    "aws:route53/healthCheck:HealthCheck": {
        replaceOn: ["type", "requestInterval", "measureLatency", "referenceName", "routingControlArn"],
        source: `${TF_AWS}/route53/health_check.go (ForceNew; ip_address, port, failure_threshold UpdateHealthCheck)`,
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": { replaceOn: ["name"], source: `${TF_AWS}/cloudwatch/metric_alarm.go (alarm_name ForceNew; the rest PutMetricAlarm)` },
    "aws:sns/topic:Topic": { replaceOn: ["name", "namePrefix", "fifoTopic"], source: `${TF_AWS}/sns/topic.go (name ForceNew)` },
    "aws:sns/topicSubscription:TopicSubscription": {
        replaceOn: ["endpoint", "protocol", "topic"],
        source: `${TF_AWS}/sns/topic_subscription.go (endpoint, protocol, topic_arn ForceNew: a new confirmation mail)`,
    },
    "aws:ec2/securityGroup:SecurityGroup": {
        replaceOn: ["name", "namePrefix", "description", "vpcId"],
        source: `${TF_AWS}/ec2/vpc_security_group.go (ForceNew); SDK securityGroup.d.ts: "description, namePrefix, or vpcId cannot be changed"`,
    },
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
        replaceOn: ["securityGroupId"],
        source: `${TF_AWS}/ec2/vpc_security_group_ingress_rule.go (security_group_id RequiresReplace; the rest ModifySecurityGroupRules)`,
    },
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {
        replaceOn: ["securityGroupId"],
        source: `${TF_AWS}/ec2/vpc_security_group_egress_rule.go (shares the ingress rule's base)`,
    },
    "aws:s3/bucket:Bucket": {
        replaceOn: ["bucket", "bucketPrefix", "bucketNamespace", "objectLockEnabled"],
        source: `${TF_AWS}/s3/bucket.go (bucket, bucket_prefix, object_lock_enabled ForceNew: a new, empty bucket; tags in place)`,
    },
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        replaceOn: ["bucket"],
        source: `${TF_AWS}/s3/bucket_public_access_block.go (bucket ForceNew; the four settings PutPublicAccessBlock in place)`,
    },
    "aws:s3/bucketObjectv2:BucketObjectv2": {
        // A policy change is new content at the same key: uploaded again in place (hasObjectContentChanges).
        replaceOn: ["bucket", "key"],
        source: `${TF_AWS}/s3/object.go (bucket, key ForceNew; content, content_type, cache_control: resourceObjectUpdate uploads again)`,
    },
    "aws:s3/bucketPolicy:BucketPolicy": {
        replaceOn: ["bucket"],
        source: `${TF_AWS}/s3/bucket_policy.go (bucket ForceNew; policy PutBucketPolicy in place)`,
    },
    "aws:cloudfront/originAccessControl:OriginAccessControl": {
        replaceOn: [],
        source: `${TF_AWS}/cloudfront/origin_access_control.go (no ForceNew: UpdateOriginAccessControl)`,
    },
    "aws:cloudfront/distribution:Distribution": {
        // Aliases, origins, cache behaviour and certificate: UpdateDistribution, the same distribution and domain name.
        replaceOn: ["staging"],
        source: `${TF_AWS}/cloudfront/distribution.go (only staging ForceNew; the rest UpdateDistribution)`,
    },
    "aws:acm/certificate:Certificate": {
        // Its names cannot change: a domain added or removed is a new certificate (created before the old one goes).
        replaceOn: ["domainName", "subjectAlternativeNames", "validationMethod", "keyAlgorithm", "certificateAuthorityArn", "validationOptions"],
        source: `${TF_AWS}/acm/certificate.go (domain_name, subject_alternative_names, validation_method, key_algorithm ForceNew)`,
    },
    "aws:acm/certificateValidation:CertificateValidation": {
        replaceOn: ["certificateArn", "validationRecordFqdns"],
        source: `${TF_AWS}/acm/certificate_validation.go (no Update: certificate_arn, validation_record_fqdns ForceNew; delete is a no-op)`,
    },
    "tls:index/privateKey:PrivateKey": {
        // The stack never changes either for a selector: a rotation is a new selector, so a new key beside the old.
        replaceOn: ["algorithm", "rsaBits", "ecdsaCurve"],
        source: "hashicorp/terraform-provider-tls internal/provider/resource_private_key.go (algorithm, rsa_bits, ecdsa_curve RequiresReplace)",
    },
    "cloudflare:index/dnsRecord:DnsRecord": {
        replaceOn: ["zoneId", "type"],
        source: "cloudflare/terraform-provider-cloudflare internal/services/dns_record/schema.go (zone_id, type RequiresReplace; name, content, priority, ttl update in place)",
    },
    "cloudflare:index/zoneDnsSettings:ZoneDnsSettings": {
        replaceOn: ["zoneId"],
        source: "cloudflare/terraform-provider-cloudflare internal/services/zone_dns_settings/schema.go (zone_id RequiresReplace); its delete leaves the setting in place",
    },
    "docker:index/container:Container": {
        // restart and resource limits update in place; nothing else this stack sets does.
        replaceOn: ["name", "image", "envs", "uploads", "volumes", "mounts", "ports", "hostname", "labels", "stopTimeout", "command", "entrypoint", "networkMode"],
        source: "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_container.go (ForceNew); pulumi-docker provider/resources.go sets DeleteBeforeReplace for containers",
    },
    "docker:index/volume:Volume": {
        replaceOn: ["name", "driver", "driverOpts", "labels"],
        source: "kreuzwerker/terraform-provider-docker internal/provider/resource_docker_volume.go (ForceNew; a replaced volume's data is deleted)",
    },
    "docker:index/image:Image": {
        replaceOn: [],
        source: "pulumi/pulumi-docker provider/provider.go (native Image: every change is an update, a rebuild; repoDigest changes)",
    },
    "command:remote:Command": {
        replaceOn: ["triggers"],
        source: "pulumi/pulumi-command provider/pkg/provider/common/inputs.go (triggers replaceOnChanges); remote/commandController.go (any other change runs update, else create, again)",
    },
};

export function replacementRuleFor(type: string): ReplacementRule | undefined {
    return REPLACEMENT_RULES[type];
}
