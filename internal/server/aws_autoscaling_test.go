package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/awsid"
)

// Auto Scaling's actions under the AWS CLI and boto3, against a running
// controller: each checks what the controller did, not only what the
// endpoint answered.

// asgWebConfig is webConfig's group with tags.
func asgWebConfig(t *testing.T, desired int) string {
	return strings.Replace(webConfig(freePort(t), desired, ""), "  - name: web\n", "  - name: web\n    tags: {env: test, team: pets}\n", 1)
}

// group is the controller's view of a group.
func (a *awsEnv) asgGroup(name string) wire.Group {
	a.t.Helper()
	g, err := a.client.Group(context.Background(), name)
	if err != nil {
		a.t.Fatalf("group %s: %v", name, err)
	}
	return g
}

// asgCLIErr runs the CLI expecting an error that mentions every one of want.
func (a *awsEnv) asgCLIErr(profile string, want []string, args ...string) {
	a.t.Helper()
	out, err := a.cli(profile, args...)
	if err == nil {
		a.t.Fatalf("aws %s succeeded, want an error with %q: %v", strings.Join(args, " "), want, out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			a.t.Errorf("aws %s: error %q lacks %q", strings.Join(args, " "), err, w)
		}
	}
}

func asgIDs(ins []wire.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return out
}

// TestAWSAutoScalingDescribe: DescribeAutoScalingGroups and
// DescribeAutoScalingInstances show the group as the controller runs it.
func TestAWSAutoScalingDescribe(t *testing.T) {
	t.Parallel()
	a := startAWS(t, asgWebConfig(t, 2))
	live := a.waitInService(2, 30*time.Second)
	out := a.mustCLI("viewer", "autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "web")
	g := dig(out, "AutoScalingGroups", 0)
	for k, want := range map[string]any{
		"AutoScalingGroupName": "web", "AutoScalingGroupARN": awsid.GroupARN("web"),
		"MinSize": 0.0, "MaxSize": 2.0, "DesiredCapacity": 2.0, "HealthCheckType": "ELB",
	} {
		if got := dig(g, k); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if dig(g, "LaunchTemplate", "LaunchTemplateName") != "web" || dig(g, "AvailabilityZones", 0) != awsid.Zone {
		t.Errorf("launch template or zones: %v", g)
	}
	if ct, _ := dig(g, "CreatedTime").(string); ct == "" {
		t.Errorf("no CreatedTime: %v", g)
	}
	if tgs := dig(g, "TargetGroupARNs"); !slices.Contains(tgs.([]any), any(awsid.TargetGroupARN("web"))) {
		t.Errorf("TargetGroupARNs %v lacks target group web's", tgs)
	}
	tags := map[string]any{}
	for _, tg := range dig(g, "Tags").([]any) {
		tags[dig(tg, "Key").(string)] = dig(tg, "Value")
	}
	if tags["env"] != "test" || tags["team"] != "pets" {
		t.Errorf("tags %v", tags)
	}
	var got []string
	for _, in := range dig(g, "Instances").([]any) {
		got = append(got, dig(in, "InstanceId").(string))
		if dig(in, "LifecycleState") != "InService" || dig(in, "HealthStatus") != "Healthy" ||
			dig(in, "AvailabilityZone") != awsid.Zone || dig(in, "ProtectedFromScaleIn") != false {
			t.Errorf("instance %v", in)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, asgIDs(live)) {
		t.Errorf("instances %v, want %v", got, asgIDs(live))
	}

	// Unknown names are left out, as on AWS; tag filters select.
	if gs := dig(a.mustCLI("viewer", "autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "nope"), "AutoScalingGroups"); len(gs.([]any)) != 0 {
		t.Errorf("unknown group listed: %v", gs)
	}
	if gs := dig(a.mustCLI("viewer", "autoscaling", "describe-auto-scaling-groups", "--filters", "Name=tag:env,Values=prod"), "AutoScalingGroups"); len(gs.([]any)) != 0 {
		t.Errorf("tag filter env=prod matched: %v", gs)
	}
	if n := dig(a.mustCLI("viewer", "autoscaling", "describe-auto-scaling-groups", "--filters", "Name=tag:env,Values=test"), "AutoScalingGroups", 0, "AutoScalingGroupName"); n != "web" {
		t.Errorf("tag filter env=test: %v", n)
	}

	out = a.mustCLI("viewer", "autoscaling", "describe-auto-scaling-instances", "--instance-ids", live[0].ID, "i-00000000000000000")
	ins := dig(out, "AutoScalingInstances").([]any)
	if len(ins) != 1 || dig(ins[0], "InstanceId") != live[0].ID || dig(ins[0], "AutoScalingGroupName") != "web" ||
		dig(ins[0], "HealthStatus") != "HEALTHY" || dig(ins[0], "LifecycleState") != "InService" {
		t.Errorf("describe-auto-scaling-instances: %v", out)
	}

	// boto3 reads the same, with pagination.
	res, err := a.boto("viewer", `
c = boto3.client('autoscaling', endpoint_url=ENDPOINT)
pages = c.get_paginator('describe_auto_scaling_instances').paginate(PaginationConfig={'PageSize': 1})
print(json.dumps(sorted(i['InstanceId'] for p in pages for i in p['AutoScalingInstances'])))
`)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res) != fmt.Sprint(asgIDs(live)) {
		t.Errorf("boto3 paginated instances %v, want %v", res, asgIDs(live))
	}
	a.asgCLIErr("viewer", []string{"InvalidNextToken"}, "autoscaling", "describe-auto-scaling-groups", "--starting-token", "bogus", "--max-items", "1")
}

// TestAWSAutoScalingCapacity: SetDesiredCapacity and UpdateAutoScalingGroup
// scale the group; refused and bad requests change nothing.
func TestAWSAutoScalingCapacity(t *testing.T) {
	t.Parallel()
	a := startAWS(t, asgWebConfig(t, 2))
	a.waitInService(2, 30*time.Second)

	a.asgCLIErr("viewer", []string{"AccessDenied", "SetDesiredCapacity"}, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "web", "--desired-capacity", "1")
	a.asgCLIErr("operator", []string{"ValidationError", "AutoScalingGroup name not found", "nope"}, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "nope", "--desired-capacity", "1")
	a.asgCLIErr("operator", []string{"ValidationError", "value 5 is above max value 2"}, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "web", "--desired-capacity", "5")
	a.asgCLIErr("operator", []string{"ValidationError", "VPCZoneIdentifier", "HealthCheckGracePeriod"}, "autoscaling", "update-auto-scaling-group",
		"--auto-scaling-group-name", "web", "--max-size", "3", "--vpc-zone-identifier", "subnet-1", "--health-check-grace-period", "300")
	if g := a.asgGroup("web"); g.Min != 0 || g.Max != 2 || g.Desired != 2 {
		t.Fatalf("refused requests changed the group: %+v", g)
	}

	a.mustCLI("operator", "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "web", "--desired-capacity", "1")
	if g := a.asgGroup("web"); g.Desired != 1 {
		t.Fatalf("desired %d after set-desired-capacity 1", g.Desired)
	}
	a.waitInService(1, 30*time.Second)

	// Harmless parameters are accepted: the cooldown (nothing uses one)
	// and the zone the group is in.
	a.mustCLI("operator", "autoscaling", "update-auto-scaling-group", "--auto-scaling-group-name", "web",
		"--min-size", "1", "--max-size", "3", "--desired-capacity", "3", "--default-cooldown", "60", "--availability-zones", awsid.Zone)
	if g := a.asgGroup("web"); g.Min != 1 || g.Max != 3 || g.Desired != 3 {
		t.Fatalf("after update-auto-scaling-group: %+v", g)
	}
	a.waitInService(3, 30*time.Second)

	// A max below the desired capacity takes it down, as on AWS; through
	// boto3. A bad number is refused naming the parameter.
	_, err := a.boto("operator", `
c = boto3.client('autoscaling', endpoint_url=ENDPOINT)
c.update_auto_scaling_group(AutoScalingGroupName='web', MaxSize=2)
print(json.dumps(c.describe_auto_scaling_groups(AutoScalingGroupNames=['web'])['AutoScalingGroups'][0]['DesiredCapacity']))
`)
	if err != nil {
		t.Fatal(err)
	}
	if g := a.asgGroup("web"); g.Max != 2 || g.Desired != 2 {
		t.Fatalf("after MaxSize 2: %+v", g)
	}
	_, err = a.boto("operator", `
from botocore.config import Config
c = boto3.client('autoscaling', endpoint_url=ENDPOINT, config=Config(parameter_validation=False))
c.set_desired_capacity(AutoScalingGroupName='web', DesiredCapacity='two')
`)
	if err == nil || !strings.Contains(err.Error(), "ValidationError") || !strings.Contains(err.Error(), `DesiredCapacity "two" is not an integer`) {
		t.Fatalf("a desired capacity of 'two': %v", err)
	}
	a.waitInService(2, 30*time.Second)

	// The activities: the launches this test made, successful.
	acts := dig(a.mustCLI("viewer", "autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "web"), "Activities").([]any)
	launched, terminated := 0, 0
	for _, act := range acts {
		desc, _ := dig(act, "Description").(string)
		switch {
		case strings.HasPrefix(desc, "Launching a new EC2 instance: "):
			launched++
		case strings.HasPrefix(desc, "Terminating EC2 instance: "):
			terminated++
		}
		if dig(act, "AutoScalingGroupName") != "web" || dig(act, "StartTime") == nil {
			t.Errorf("activity %v", act)
		}
	}
	// 2 at start, 2 more to reach 3 after the scale-in to 1; 1 + 1 scale-ins.
	if launched != 4 || terminated != 2 {
		t.Errorf("%d launches and %d terminations in %v, want 4 and 2", launched, terminated, acts)
	}
}

// TestAWSAutoScalingTerminate: TerminateInstanceInAutoScalingGroup and
// SetInstanceHealth terminate instances, with and without a replacement.
func TestAWSAutoScalingTerminate(t *testing.T) {
	t.Parallel()
	a := startAWS(t, webConfig(freePort(t), 2, ""))
	live := a.waitInService(2, 30*time.Second)

	a.asgCLIErr("viewer", []string{"AccessDenied"}, "autoscaling", "terminate-instance-in-auto-scaling-group", "--instance-id", live[0].ID, "--should-decrement-desired-capacity")
	a.asgCLIErr("operator", []string{"ValidationError", "No managed instance found for instance ID: i-00000000000000000"},
		"autoscaling", "terminate-instance-in-auto-scaling-group", "--instance-id", "i-00000000000000000", "--no-should-decrement-desired-capacity")

	out := a.mustCLI("operator", "autoscaling", "terminate-instance-in-auto-scaling-group", "--instance-id", live[0].ID, "--should-decrement-desired-capacity")
	act := dig(out, "Activity")
	if dig(act, "StatusCode") != "InProgress" || dig(act, "Description") != "Terminating EC2 instance: "+live[0].ID ||
		!strings.Contains(dig(act, "Cause").(string), "shrinking the capacity from 2 to 1") {
		t.Errorf("activity %v", act)
	}
	if g := a.asgGroup("web"); g.Desired != 1 {
		t.Errorf("desired %d after a terminate with decrement", g.Desired)
	}
	left := a.waitInService(1, 30*time.Second)
	if left[0].ID != live[1].ID {
		t.Fatalf("left %s, want %s", left[0].ID, live[1].ID)
	}
	// The activity the call returned ends Successful.
	id := dig(act, "ActivityId").(string)
	waitFor(t, 20*time.Second, "the termination activity Successful", func() bool {
		out, err := a.cli("viewer", "autoscaling", "describe-scaling-activities", "--activity-ids", id)
		return err == nil && dig(out, "Activities", 0, "StatusCode") == "Successful" && dig(out, "Activities", 0, "Progress") == 100.0
	})

	// Healthy changes nothing; Unhealthy replaces the instance (boto3).
	a.mustCLI("operator", "autoscaling", "set-instance-health", "--instance-id", left[0].ID, "--health-status", "Healthy")
	a.asgCLIErr("operator", []string{"ValidationError", "HealthStatus"}, "autoscaling", "set-instance-health", "--instance-id", left[0].ID, "--health-status", "Sick")
	if _, err := a.boto("operator", fmt.Sprintf(`
c = boto3.client('autoscaling', endpoint_url=ENDPOINT)
c.set_instance_health(InstanceId=%q, HealthStatus='Unhealthy', ShouldRespectGracePeriod=False)
print('{}')
`, left[0].ID)); err != nil {
		t.Fatal(err)
	}
	var repl []wire.Instance
	waitFor(t, 30*time.Second, "a replacement for the instance set Unhealthy", func() bool {
		repl = a.live()
		return len(repl) == 1 && repl[0].ID != left[0].ID && repl[0].State == "InService"
	})
	if g := a.asgGroup("web"); g.Desired != 1 {
		t.Errorf("desired %d after set-instance-health Unhealthy, want 1 (replaced, not removed)", g.Desired)
	}

	// Without decrement: replaced too.
	a.mustCLI("operator", "autoscaling", "terminate-instance-in-auto-scaling-group", "--instance-id", repl[0].ID, "--no-should-decrement-desired-capacity")
	waitFor(t, 30*time.Second, "a replacement for the terminated instance", func() bool {
		l := a.live()
		return len(l) == 1 && l[0].ID != repl[0].ID && l[0].State == "InService"
	})
}

// asgHookConfig is a group whose launch hook waits to be completed, and whose
// terminate hook too; each hook script writes its instance and token to
// marks, and a heartbeat timeout of timeout.
func asgHookConfig(marks string, timeout time.Duration) string {
	return fmt.Sprintf(`
groups:
  - name: hooked
    launch:
      command: /bin/sh
      args: ["-c", "exec sleep 600"]
      stop_timeout: 1s
    heal:
      backoff_base: 10ms
    hooks:
      launch:
        - name: wait
          script: echo "$AUTOHEAL_INSTANCE_ID launch $AUTOHEAL_LIFECYCLE_HOOK_NAME $AUTOHEAL_LIFECYCLE_ACTION_TOKEN" >> '%[1]s'; exec sleep 600
          heartbeat_timeout: %[2]s
          default_result: abandon
      terminate:
        - name: drain
          script: echo "$AUTOHEAL_INSTANCE_ID terminate $AUTOHEAL_LIFECYCLE_HOOK_NAME $AUTOHEAL_LIFECYCLE_ACTION_TOKEN" >> '%[1]s'; exec sleep 600
          heartbeat_timeout: 60s
`, marks, timeout)
}

// asgHookMark waits for the hook script of phase to have started for an
// instance other than skip and returns the instance and its token.
func asgHookMark(t *testing.T, marks, phase, skip string) (id, token string) {
	t.Helper()
	waitFor(t, 30*time.Second, phase+" hook started", func() bool {
		b, _ := os.ReadFile(marks)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[1] == phase && f[0] != skip {
				id, token = f[0], f[3]
			}
		}
		return id != ""
	})
	return id, token
}

func (a *awsEnv) asgInstanceState(id string) string {
	in, err := a.client.Instance(context.Background(), id)
	if err != nil {
		return ""
	}
	return in.State
}

// TestAWSAutoScalingLifecycleActions: a running hook script is a lifecycle
// action: heartbeats keep it past its heartbeat timeout, CONTINUE lets the
// launch go on, ABANDON abandons it whatever the hook's default_result,
// and a terminate hook completed lets the termination go on.
func TestAWSAutoScalingLifecycleActions(t *testing.T) {
	t.Parallel()
	marks := filepath.Join(t.TempDir(), "marks")
	const timeout = 5 * time.Second
	a := startAWS(t, asgHookConfig(marks, timeout))
	first, token := asgHookMark(t, marks, "launch", "")
	if s := a.asgInstanceState(first); s != "Pending:Wait" {
		t.Fatalf("instance %s is %s while its launch hook runs", first, s)
	}

	// Heartbeats keep the hook running past its timeout: without them
	// it would have timed out and its default_result (abandon) applied.
	// Refused and bad requests go between them.
	heartbeat := func() {
		t.Helper()
		a.mustCLI("operator", "autoscaling", "record-lifecycle-action-heartbeat",
			"--auto-scaling-group-name", "hooked", "--lifecycle-hook-name", "wait", "--instance-id", first)
	}
	start := time.Now()
	heartbeat()
	a.asgCLIErr("viewer", []string{"AccessDenied"}, "autoscaling", "record-lifecycle-action-heartbeat",
		"--auto-scaling-group-name", "hooked", "--lifecycle-hook-name", "wait", "--instance-id", first)
	heartbeat()
	a.asgCLIErr("operator", []string{"ValidationError", "No Lifecycle Hook found with name nope"}, "autoscaling", "complete-lifecycle-action",
		"--auto-scaling-group-name", "hooked", "--lifecycle-hook-name", "nope", "--instance-id", first, "--lifecycle-action-result", "CONTINUE")
	heartbeat()
	a.asgCLIErr("operator", []string{"ValidationError", "No active Lifecycle Action", "drain"}, "autoscaling", "complete-lifecycle-action",
		"--auto-scaling-group-name", "hooked", "--lifecycle-hook-name", "drain", "--instance-id", first, "--lifecycle-action-result", "CONTINUE")
	for time.Since(start) < timeout+time.Second {
		heartbeat()
	}
	if s := a.asgInstanceState(first); s != "Pending:Wait" {
		t.Fatalf("instance %s is %s after %s of heartbeats, want Pending:Wait (its hook still running)\n%s", first, s, time.Since(start), a.dumpEvents())
	}

	// CONTINUE, by token, through boto3.
	if _, err := a.boto("operator", fmt.Sprintf(`
c = boto3.client('autoscaling', endpoint_url=ENDPOINT)
c.complete_lifecycle_action(AutoScalingGroupName='hooked', LifecycleHookName='wait', LifecycleActionToken=%q, LifecycleActionResult='CONTINUE')
print('{}')
`, token)); err != nil {
		t.Fatal(err)
	}
	live := a.waitInService(1, 30*time.Second)
	if live[0].ID != first {
		t.Fatalf("InService %s, want %s", live[0].ID, first)
	}
	a.asgCLIErr("operator", []string{"ValidationError", "No active Lifecycle Action found with instance ID " + first}, "autoscaling", "complete-lifecycle-action",
		"--auto-scaling-group-name", "hooked", "--lifecycle-hook-name", "wait", "--instance-id", first, "--lifecycle-action-result", "CONTINUE")

	// A terminate hook completed: the termination goes on at once.
	a.mustCLI("operator", "autoscaling", "terminate-instance-in-auto-scaling-group", "--instance-id", first, "--no-should-decrement-desired-capacity")
	if id, _ := asgHookMark(t, marks, "terminate", ""); id != first {
		t.Fatalf("terminate hook of %s, want %s", id, first)
	}
	a.mustCLI("operator", "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "hooked",
		"--lifecycle-hook-name", "drain", "--instance-id", first, "--lifecycle-action-result", "ABANDON")
	waitFor(t, 20*time.Second, first+" Terminated", func() bool { return a.asgInstanceState(first) == "Terminated" })

	// The replacement's launch hook, abandoned: the launch is abandoned
	// and the instance replaced.
	second, _ := asgHookMark(t, marks, "launch", first)
	a.mustCLI("operator", "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "hooked",
		"--lifecycle-hook-name", "wait", "--instance-id", second, "--lifecycle-action-result", "ABANDON")
	// It is replaced: its terminate hook first (completed here), then a
	// new instance.
	if id, _ := asgHookMark(t, marks, "terminate", first); id != second {
		t.Fatalf("terminate hook of %s, want %s", id, second)
	}
	a.mustCLI("operator", "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "hooked",
		"--lifecycle-hook-name", "drain", "--instance-id", second, "--lifecycle-action-result", "CONTINUE")
	third := ""
	waitFor(t, 30*time.Second, "a new instance after the abandoned launch", func() bool {
		for _, in := range a.live() {
			if in.ID != first && in.ID != second && in.State == "Pending:Wait" {
				third = in.ID
			}
		}
		return third != "" && a.asgInstanceState(second) == "Terminated"
	})

	var journal []string
	for _, ev := range a.events() {
		if ev.Type == "instance.hook" {
			journal = append(journal, ev.Instance+" "+ev.Message)
		}
	}
	for _, want := range []string{
		first + " launch hook wait completed through the API with CONTINUE",
		first + " terminate hook drain completed through the API with ABANDON",
		second + " launch hook wait completed through the API with ABANDON",
	} {
		if !slices.ContainsFunc(journal, func(j string) bool { return strings.HasPrefix(j, want) }) {
			t.Errorf("journal lacks %q:\n%s", want, strings.Join(journal, "\n"))
		}
	}
	// The abandoned launch is a failed activity.
	acts := dig(a.mustCLI("viewer", "autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "hooked"), "Activities").([]any)
	failed := false
	for _, act := range acts {
		if dig(act, "Description") == "Launching a new EC2 instance: "+second {
			failed = dig(act, "StatusCode") == "Failed"
		}
	}
	if !failed {
		t.Errorf("the abandoned launch of %s is not a Failed activity: %v", second, acts)
	}
}

// TestAWSAutoScalingScheduledAction: PutScheduledUpdateGroupAction checks
// the action and, since scheduled actions are the config's, refuses it
// with the config entry to add.
func TestAWSAutoScalingScheduledAction(t *testing.T) {
	t.Parallel()
	a := startAWS(t, asgHookConfig(filepath.Join(t.TempDir(), "marks"), time.Minute))
	a.asgCLIErr("viewer", []string{"AccessDenied"}, "autoscaling", "put-scheduled-update-group-action",
		"--auto-scaling-group-name", "hooked", "--scheduled-action-name", "night", "--recurrence", "0 20 * * *", "--desired-capacity", "0")
	a.asgCLIErr("operator", []string{"ValidationError", "Recurrence"}, "autoscaling", "put-scheduled-update-group-action",
		"--auto-scaling-group-name", "hooked", "--scheduled-action-name", "night", "--recurrence", "every night", "--desired-capacity", "0")
	a.asgCLIErr("operator", []string{"ValidationError", "nope"}, "autoscaling", "put-scheduled-update-group-action",
		"--auto-scaling-group-name", "nope", "--scheduled-action-name", "night", "--recurrence", "0 20 * * *", "--desired-capacity", "0")
	a.asgCLIErr("operator", []string{"ValidationError", "StartTime"}, "autoscaling", "put-scheduled-update-group-action",
		"--auto-scaling-group-name", "hooked", "--scheduled-action-name", "night", "--recurrence", "0 20 * * *", "--desired-capacity", "0",
		"--start-time", "2030-01-01T00:00:00Z")
	// Added at run time: recorded, journaled, run by the scheduler on its
	// schedule (maintenance TestAddedActions runs one and finds it after a
	// restart); the capacity is not changed now.
	a.mustCLI("operator", "autoscaling", "put-scheduled-update-group-action",
		"--auto-scaling-group-name", "hooked", "--scheduled-action-name", "night", "--recurrence", "0 20 * * *", "--desired-capacity", "0")
	if !strings.Contains(a.dumpEvents(), `scheduled action night added: desired 0 of group hooked at "0 20 * * *" (UTC)`) {
		t.Errorf("no event for the added action:\n%s", a.dumpEvents())
	}
	if g := a.asgGroup("hooked"); g.Desired != 1 {
		t.Errorf("desired %d", g.Desired)
	}
}
