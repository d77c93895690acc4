package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
)

// awsTargets is DescribeTargetHealth's answer by target id: state and
// reason.
func (a *awsEnv) awsTargets(profile, arn string, targets ...string) (map[string][2]string, map[string]any) {
	a.t.Helper()
	args := []string{"elbv2", "describe-target-health", "--target-group-arn", arn}
	if len(targets) > 0 {
		args = append(args, "--targets")
		for _, id := range targets {
			args = append(args, "Id="+id)
		}
	}
	out := a.mustCLI(profile, args...)
	got := map[string][2]string{}
	for _, d := range dig(out, "TargetHealthDescriptions").([]any) {
		id, _ := dig(d, "Target", "Id").(string)
		state, _ := dig(d, "TargetHealth", "State").(string)
		reason, _ := dig(d, "TargetHealth", "Reason").(string)
		got[id] = [2]string{state, reason}
	}
	return got, out
}

// TestAWSELBv2 drives ELBv2's actions with the AWS CLI and boto3 against
// the web example: target groups, target health, and a deregistration
// that takes a target out of the load balancer's rotation (it drains,
// then stops getting requests) until it is registered again.
func TestAWSELBv2(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := startAWS(t, webConfig(port, 2, ""))
	a.waitInService(2, 30*time.Second)
	healthy := a.waitHealthyTargets("web", 2, 30*time.Second)
	arn := awsid.TargetGroupARN("web")

	// DescribeTargetGroups: all, by name, by ARN.
	for _, args := range [][]string{nil, {"--names", "web"}, {"--target-group-arns", arn}} {
		out := a.mustCLI("viewer", append([]string{"elbv2", "describe-target-groups"}, args...)...)
		tgs, _ := dig(out, "TargetGroups").([]any)
		if len(tgs) != 1 || dig(tgs[0], "TargetGroupName") != "web" || dig(tgs[0], "TargetGroupArn") != arn ||
			dig(tgs[0], "Protocol") != "HTTP" || dig(tgs[0], "TargetType") != "instance" || dig(tgs[0], "HealthCheckEnabled") != true {
			t.Errorf("describe-target-groups %v: %v", args, out)
		}
		if p, _ := dig(tgs[0], "Port").(float64); p < 1 {
			t.Errorf("describe-target-groups %v: no Port: %v", args, out)
		}
	}

	// DescribeTargetHealth: both instances healthy, with their ports.
	got, out := a.awsTargets("viewer", arn)
	if len(got) != 2 {
		t.Fatalf("describe-target-health: %v", out)
	}
	for _, id := range healthy {
		if got[id] != [2]string{"healthy", ""} {
			t.Errorf("%s: %v, want healthy: %v", id, got[id], out)
		}
	}
	if p, _ := dig(out, "TargetHealthDescriptions", 0, "Target", "Port").(float64); p < 1 {
		t.Errorf("no target port: %v", out)
	}
	// Asked about, a target the group does not have is unused.
	if got, out := a.awsTargets("viewer", arn, "i-00000000000000000"); got["i-00000000000000000"] != [2]string{"unused", "Target.NotRegistered"} {
		t.Errorf("unregistered target: %v", out)
	}

	// DeregisterTargets takes the victim out: draining, then unused, and
	// no request reaches it while the other keeps serving.
	load := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d", port), map[string]int{"/": 4})
	load.waitRequests(50, 20*time.Second)
	victim, other := healthy[0], healthy[1]
	if _, err := a.cli("viewer", "elbv2", "deregister-targets", "--target-group-arn", arn, "--targets", "Id="+victim); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("a viewer's deregister-targets: %v, want AccessDenied", err)
	}
	a.mustCLI("operator", "elbv2", "deregister-targets", "--target-group-arn", arn, "--targets", "Id="+victim)
	got, out = a.awsTargets("viewer", arn, victim)
	if s := got[victim]; s != [2]string{"draining", "Target.DeregistrationInProgress"} && s != [2]string{"unused", "Target.NotRegistered"} {
		t.Errorf("just deregistered %s: %v, want draining (or already drained)", victim, out)
	}
	waitFor(t, 20*time.Second, victim+" unused", func() bool {
		got, _ := a.awsTargets("viewer", arn, victim)
		return got[victim] == [2]string{"unused", "Target.NotRegistered"}
	})
	before, beforeOther := load.servedBy(victim), load.servedBy(other)
	load.waitRequests(200, 20*time.Second)
	if n := load.servedBy(victim); n != before {
		t.Errorf("%s served %d requests after its deregistration", victim, n-before)
	}
	if load.servedBy(other) <= beforeOther {
		t.Errorf("%s served nothing while %s was out", other, victim)
	}

	// RegisterTargets, with boto3: back in rotation, healthy, serving.
	res, err := a.boto("operator", fmt.Sprintf(`
c = boto3.client('elbv2', endpoint_url=ENDPOINT)
c.register_targets(TargetGroupArn=%q, Targets=[{'Id': %q}])
print(json.dumps(c.describe_target_health(TargetGroupArn=%q, Targets=[{'Id': %q}])['TargetHealthDescriptions'], default=str))
`, arn, victim, arn, victim))
	if err != nil {
		t.Fatal(err)
	}
	if s := dig(res, 0, "TargetHealth", "State"); s != "initial" && s != "healthy" {
		t.Errorf("just registered %s: %v, want initial or healthy", victim, res)
	}
	waitFor(t, 20*time.Second, victim+" healthy again", func() bool {
		got, _ := a.awsTargets("viewer", arn, victim)
		return got[victim][0] == "healthy"
	})
	before = load.servedBy(victim)
	waitFor(t, 20*time.Second, victim+" serving again", func() bool { return load.servedBy(victim) > before })
	load.check(a.env)

	// boto3 reads the target groups as the CLI does.
	res, err = a.boto("viewer", `
c = boto3.client('elbv2', endpoint_url=ENDPOINT)
print(json.dumps([g['TargetGroupName'] for g in c.describe_target_groups()['TargetGroups']]))
`)
	if err != nil || !slices.Equal(toStrings(res), []string{"web"}) {
		t.Errorf("boto3 describe_target_groups: %v %v", res, err)
	}

	// Bad input: clear errors.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"elbv2", "describe-target-health", "--target-group-arn", awsid.TargetGroupARN("nope")}, "TargetGroupNotFound"},
		{[]string{"elbv2", "describe-target-groups", "--names", "nope"}, "TargetGroupNotFound"},
		{[]string{"elbv2", "describe-target-health", "--target-group-arn", "arn:aws:ec2:local:000000000000:instance/i-1"}, "ValidationError"},
		{[]string{"elbv2", "deregister-targets", "--target-group-arn", arn, "--targets", "Id=i-00000000000000000"}, "InvalidTarget"},
		{[]string{"elbv2", "register-targets", "--target-group-arn", arn, "--targets", "Id=i-00000000000000000"}, "InvalidTarget"},
	} {
		if _, err := a.cli("operator", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("aws %s: %v, want %s", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// The audit trail names the calls that changed something.
	events := a.dumpEvents()
	for _, want := range []string{"operator aws elasticloadbalancing:DeregisterTargets -> 200", "operator aws elasticloadbalancing:RegisterTargets -> 200",
		"viewer aws elasticloadbalancing:DeregisterTargets -> 403"} {
		if !strings.Contains(events, want) {
			t.Errorf("no audit event %q:\n%s", want, events)
		}
	}
}

// toStrings converts decoded JSON's list of strings.
func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
