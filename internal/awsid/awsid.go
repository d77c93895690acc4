// Package awsid gives autoheal's objects the identifiers AWS would give
// them (docs/design.md §14): stable, derived from the objects' names, so
// that documents, scripts and SDK calls written against AWS find them, and
// the same name always gets the same id. Instances keep their own ids,
// which already have EC2's shape (i- and 17 hex digits).
package awsid

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Account and Region are what ARNs and responses name: autoheal is one
// account in one region. Requests may be signed for any region.
const (
	Account = "000000000000"
	Region  = "local"
	// Zone is every instance's availability zone.
	Zone = Region + "a"
)

// digest is n hex digits of the SHA-256 of what names an object.
func digest(n int, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:n]
}

// Volume is the id of a group's volume: vol- and 17 hex digits.
func Volume(group, volume string) string { return "vol-" + digest(17, "volume", group, volume) }

// Image is the image id (ami- and 17 hex digits) a group's instances show:
// its launch template's.
func Image(group string) string { return "ami-" + digest(17, "image", group) }

// Reservation is the reservation id (r-) a group's instances are in, as
// an Auto Scaling group's launches.
func Reservation(group string) string { return "r-" + digest(17, "reservation", group) }

// LaunchTemplate is a group's launch template id (lt-).
func LaunchTemplate(group string) string { return "lt-" + digest(17, "launch-template", group) }

// Allocation is the allocation id of a group's address: eipalloc- and
// 17 hex digits.
func Allocation(group, address string) string {
	return "eipalloc-" + digest(17, "address", group, address)
}

// Association is the id of an address's association with an instance.
func Association(allocation, instance string) string {
	return "eipassoc-" + digest(17, "association", allocation, instance)
}

// uuid formats 32 hex digits as a UUID (8-4-4-4-12).
func uuid(x string) string {
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// NewUUID is a random (version 4) UUID: AWS's request ids, command ids
// and lifecycle action tokens.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid(hex.EncodeToString(b))
}

// StableUUID is a UUID-shaped id derived from what names an object: the
// same parts, the same id.
func StableUUID(parts ...string) string { return uuid(digest(32, parts...)) }

// GroupARN is an instance group's Auto Scaling group ARN.
func GroupARN(group string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", Region, Account, StableUUID("group", group), group)
}

// TargetGroupARN is a target group's ARN.
func TargetGroupARN(name string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%s", Region, Account, name, digest(16, "targetgroup", name))
}

// LoadBalancerARN is a load balancer's ARN.
func LoadBalancerARN(name string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/app/%s/%s", Region, Account, name, digest(16, "loadbalancer", name))
}

// AlarmARN is an alarm's ARN.
func AlarmARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", Region, Account, name)
}

// TargetGroupName returns the name in a target group's ARN, or the
// argument itself when it is not an ARN (AWS's APIs take ARNs; a name is
// accepted too). The ARN's region, account and id are not checked: a
// document written for AWS names its own.
func TargetGroupName(arnOrName string) (string, error) {
	if !strings.HasPrefix(arnOrName, "arn:") {
		return arnOrName, nil
	}
	f := strings.SplitN(arnOrName, ":", 6)
	if len(f) < 6 || f[2] != "elasticloadbalancing" || !strings.HasPrefix(f[5], "targetgroup/") {
		return "", fmt.Errorf("%q is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)", arnOrName)
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(f[5], "targetgroup/"), "/")
	if name == "" {
		return "", fmt.Errorf("%q: the target group ARN has no name", arnOrName)
	}
	return name, nil
}

// GroupName returns the group name in an Auto Scaling group ARN, or the
// argument when it is a name.
func GroupName(arnOrName string) string {
	if _, name, ok := strings.Cut(arnOrName, ":autoScalingGroupName/"); ok && strings.HasPrefix(arnOrName, "arn:") {
		return name
	}
	return arnOrName
}
