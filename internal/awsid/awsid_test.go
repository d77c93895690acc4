package awsid

import (
	"regexp"
	"testing"
)

// The ids have AWS's shapes, are the same for the same name and differ
// between names; the ARNs parse back to their names.
func TestShapes(t *testing.T) {
	cases := []struct {
		got  string
		re   string
		same string
		diff string
	}{
		{Volume("pet", "data"), `^vol-[0-9a-f]{17}$`, Volume("pet", "data"), Volume("pet", "logs")},
		{Allocation("pet", "http"), `^eipalloc-[0-9a-f]{17}$`, Allocation("pet", "http"), Allocation("web", "http")},
		{Association("eipalloc-1", "i-1"), `^eipassoc-[0-9a-f]{17}$`, Association("eipalloc-1", "i-1"), Association("eipalloc-1", "i-2")},
		{GroupARN("pet"), `^arn:aws:autoscaling:local:000000000000:autoScalingGroup:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:autoScalingGroupName/pet$`, GroupARN("pet"), GroupARN("web")},
		{TargetGroupARN("web"), `^arn:aws:elasticloadbalancing:local:000000000000:targetgroup/web/[0-9a-f]{16}$`, TargetGroupARN("web"), TargetGroupARN("api")},
	}
	for _, c := range cases {
		if !regexp.MustCompile(c.re).MatchString(c.got) {
			t.Errorf("%s does not match %s", c.got, c.re)
		}
		if c.got != c.same || c.got == c.diff {
			t.Errorf("%s: same name %s, other name %s", c.got, c.same, c.diff)
		}
	}
	// Part boundaries count: ("a", "bc") is not ("ab", "c").
	if Volume("a", "bc") == Volume("ab", "c") {
		t.Error("volume ids of different group/volume splits collide")
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		TargetGroupARN("web"): "web",
		"web":                 "web",
		"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-targets/73e2d6bc24d8a067": "my-targets",
	} {
		if got, err := TargetGroupName(in); err != nil || got != want {
			t.Errorf("TargetGroupName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"arn:aws:ec2:local:0:instance/i-1", "arn:aws:elasticloadbalancing:local:0:loadbalancer/app/x/1", "arn:aws:elasticloadbalancing:local:0:targetgroup//1", "arn:x"} {
		if _, err := TargetGroupName(bad); err == nil {
			t.Errorf("TargetGroupName(%q) accepted", bad)
		}
	}
	if got := GroupName(GroupARN("pet")); got != "pet" {
		t.Errorf("GroupName of its ARN: %q", got)
	}
	if got := GroupName("pet"); got != "pet" {
		t.Errorf("GroupName of a name: %q", got)
	}
}
