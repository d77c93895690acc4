package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
)

// The seeds' documents and scripts, unchanged but for the endpoint,
// against a running controller (seed 001's user data is TestAWSSeed001).

// withDocuments copies runbook documents from internal/runbook/testdata/good
// next to the config, where the controller loads them.
func withDocuments(t *testing.T, cfgPath string, names ...string) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(cfgPath), "documents")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(moduleRoot(), "internal", "runbook", "testdata", "good", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAWSSeed002 runs the AWS design's graceful reboot document, started
// with the AWS CLI as on AWS: it asserts the target group healthy, drains
// the instance, reboots it (exit 194), registers it again and waits for
// the target group to be healthy. The graceful document is the article's,
// unchanged; the nested RebootWithHealthcheck is too but for what cannot
// work anywhere as written: its `if [! -f ...]` typo (the shell runs no
// test, so it never reboots, and its `rm` of the missing flag fails the
// step on AWS as here), the flag's directory (/home/ec2-user), and the
// health check's URL and its 60 s sleep.
func TestAWSSeed002(t *testing.T) {
	t.Parallel()
	needAWSClients(t)
	keys := writeAWSKeys(t)
	cfgPath := writeConfig(t, webConfig(freePort(t), 2, "")+fmt.Sprintf("\napi:\n  aws_credentials_file: %s\n", keys))
	withDocuments(t, cfgPath, "RebootInstanceGraceful", "RebootWithHealthcheck")
	reboot := filepath.Join(filepath.Dir(cfgPath), "documents", "RebootWithHealthcheck.yaml")
	b, err := os.ReadFile(reboot)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.NewReplacer(
		"if [! -f $flag_location]; then", "if [ ! -f $flag_location ]; then",
		"/home/ec2-user/REBOOT_STARTED", filepath.Join(t.TempDir(), "REBOOT_STARTED"),
		"sleep 60", "sleep 0",
		"curl http://localhost:8080/", "curl -sf http://127.0.0.1:$AUTOHEAL_PORT_HTTP/healthz",
	).Replace(string(b))
	if err := os.WriteFile(reboot, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &awsEnv{env: startInProcess(t, cfgPath, ""), t: t, keysFile: keys, home: t.TempDir()}
	live := a.waitInService(2, 30*time.Second)
	target := live[0]
	start := a.mustCLI("operator", "ssm", "start-automation-execution", "--document-name", "RebootInstanceGraceful",
		"--parameters", "InstanceId="+target.ID+",TargetGroupArn="+awsid.TargetGroupARN("web"))
	id, _ := start["AutomationExecutionId"].(string)
	if id == "" {
		t.Fatalf("start-automation-execution: %v", start)
	}
	var ex map[string]any
	waitFor(t, 90*time.Second, "the graceful reboot to end", func() bool {
		ex = a.mustCLI("viewer", "ssm", "get-automation-execution", "--automation-execution-id", id)
		s := dig(ex, "AutomationExecution", "AutomationExecutionStatus")
		return s != "InProgress" && s != "Pending" && s != "Waiting"
	})
	if s := dig(ex, "AutomationExecution", "AutomationExecutionStatus"); s != "Success" {
		t.Fatalf("the graceful reboot ended %v:\n%v", s, ex)
	}
	var steps []string
	for _, st := range dig(ex, "AutomationExecution", "StepExecutions").([]any) {
		steps = append(steps, fmt.Sprintf("%v=%v", dig(st, "StepName"), dig(st, "StepStatus")))
	}
	t.Logf("steps: %s", strings.Join(steps, " "))
	for _, want := range []string{"DeregisterInstanceFromTargetGroup=Success", "WaitForDeregisteredTarget=Success", "RebootWithHealthcheck=Success", "RegisterTarget=Success", "WaitForHealthyTargetGroup=Success"} {
		if !strings.Contains(strings.Join(steps, " "), want) {
			t.Errorf("no step %s in %v", want, steps)
		}
	}
	// Rebooted in place: the same instance with a new process, a healthy
	// target again.
	var after *int
	for _, in := range a.live() {
		if in.ID == target.ID {
			after = &in.Pid
		}
	}
	if after == nil || *after == target.Pid {
		t.Errorf("instance %s (pid %d) was not rebooted in place: now %v", target.ID, target.Pid, after)
	}
	th := a.mustCLI("viewer", "elbv2", "describe-target-health", "--target-group-arn", awsid.TargetGroupARN("web"), "--targets", "Id="+target.ID)
	if s := dig(th, "TargetHealthDescriptions", 0, "TargetHealth", "State"); s != "healthy" {
		t.Errorf("the rebooted target is %v: %v", s, th)
	}
}

// TestAWSSeed004 runs seed 004's monitoring loop inside the instance, its
// put-metric-data unchanged but for the endpoint: the service stops, the
// metric drops to 0, the alarm fires, its runbook starts the service
// again, the metric and the alarm return to OK.
func TestAWSSeed004(t *testing.T) {
	t.Parallel()
	needAWSClients(t)
	port := freePort(t)
	home := t.TempDir()
	monitor := fmt.Sprintf(`NAMESPACE=CustomNamespace
        REGION=us-east-1
        INSTANCE_ID=$(curl -s -m 60 ${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/meta-data/instance-id)
        (while :; do
          if curl -sf -o /dev/null http://127.0.0.1:%d/; then count=1; else count=0; fi
          aws --endpoint-url $AWS_ENDPOINT_URL cloudwatch put-metric-data \
          --metric-name "webapp-uptime" \
          --dimensions InstanceId=$INSTANCE_ID \
          --namespace $NAMESPACE \
          --value $count \
          --region $REGION
          sleep 0.2
        done) &
        exec {{PET}}`, port)
	cfg := fmt.Sprintf(`
groups:
  - name: pet
    api_role: viewer
    launch:
      command: /bin/sh
      args:
        - -c
        - |
          %s
      stop_timeout: 2s
      env:
        PATH: /usr/bin:/bin
        HOME: %s
    volumes:
      - name: data
    addresses:
      - name: http
        listen: 127.0.0.1:%d
        wait_timeout: 20s
    health_checks:
      - type: tcp
        port: http
        interval: 200ms
        timeout: 200ms
metrics: {resolution: 1s, retention: 1h}
alarms:
  - name: webapp-uptime
    namespace: CustomNamespace
    metric: webapp-uptime
    dimensions: {InstanceId: "*"}
    statistic: Minimum
    period: 3s
    evaluation_periods: 1
    comparison: LessThanThreshold
    threshold: 1
    actions:
      alarm:
        - remediate: {max_attempts: 2, verify_timeout: 30s, retry_pause: 1s}
`, strings.ReplaceAll(monitor, "\n        ", "\n          "), home, port)
	keys := writeAWSKeys(t)
	cfgPath := writeConfig(t, cfg+fmt.Sprintf("\napi:\n  aws_credentials_file: %s\n", keys))
	// The seed's remediation script, as the pet example's runbook of the
	// same name (webapp-uptime#CustomNamespace).
	doc, err := os.ReadFile(filepath.Join(moduleRoot(), "examples", "pet", "documents", "webapp-uptime#CustomNamespace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(filepath.Dir(cfgPath), "documents"), 0o755)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "documents", "webapp-uptime#CustomNamespace.yaml"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &awsEnv{env: startInProcess(t, cfgPath, ""), t: t, keysFile: keys, home: t.TempDir()}
	pet := a.waitInService(1, 30*time.Second)[0]
	alarmState := func() string {
		out, err := a.cli("viewer", "cloudwatch", "describe-alarms", "--alarm-names", "webapp-uptime")
		if err != nil {
			return err.Error()
		}
		return fmt.Sprint(dig(out, "MetricAlarms", 0, "StateValue"))
	}
	waitFor(t, 60*time.Second, "the alarm OK from the loop's metrics", func() bool { return alarmState() == "OK" })
	if code, b, err := httpPost(fmt.Sprintf("http://127.0.0.1:%d/service/stop", port), ""); err != nil || code != 200 {
		t.Fatalf("stop the service: %d %v %s", code, err, b)
	}
	waitFor(t, 60*time.Second, "the alarm to fire", func() bool { return alarmState() == "ALARM" })
	waitFor(t, 90*time.Second, "the runbook to start the service and the alarm to return to OK", func() bool { return alarmState() == "OK" })
	if code, _, _ := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 {
		t.Errorf("the service does not answer after the remediation: %d", code)
	}
	if now := a.live()[0]; now.ID != pet.ID {
		t.Errorf("the instance was replaced (%s -> %s): the runbook should have fixed it in place", pet.ID, now.ID)
	}
}
