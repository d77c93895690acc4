package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
)

// TestAWSEC2 drives EC2's actions with the AWS CLI against the web
// example: what they show, what they change, and what they refuse.
func TestAWSEC2(t *testing.T) {
	t.Parallel()
	a := startAWS(t, webConfig(freePort(t), 2, ""))
	live := a.waitInService(2, 30*time.Second)
	out := a.mustCLI("viewer", "ec2", "describe-instances")
	got := map[string]bool{}
	for _, r := range dig(out, "Reservations").([]any) {
		for _, in := range dig(r, "Instances").([]any) {
			got[dig(in, "InstanceId").(string)] = true
			if s := dig(in, "State", "Name"); s != "running" {
				t.Errorf("instance %v state %v, want running", dig(in, "InstanceId"), s)
			}
			if z := dig(in, "Placement", "AvailabilityZone"); z != awsid.Zone {
				t.Errorf("zone %v, want %s", z, awsid.Zone)
			}
		}
	}
	for _, in := range live {
		if !got[in.ID] {
			t.Errorf("describe-instances lacks %s: %v", in.ID, out)
		}
	}
	// Filters, as scripts find their group's instances.
	one := a.mustCLI("viewer", "ec2", "describe-instances", "--filters", "Name=tag:aws:autoscaling:groupName,Values=web", "Name=instance-id,Values="+live[0].ID)
	if n := len(dig(one, "Reservations", 0, "Instances").([]any)); n != 1 {
		t.Errorf("filtered describe-instances: %d instances, want 1: %v", n, one)
	}
	none := a.mustCLI("viewer", "ec2", "describe-instances", "--filters", "Name=tag:aws:autoscaling:groupName,Values=other")
	if r, _ := dig(none, "Reservations").([]any); len(r) != 0 {
		t.Errorf("a filter matching nothing gave %v", none)
	}
	if _, err := a.cli("viewer", "ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0"); err == nil || !strings.Contains(err.Error(), "InvalidInstanceID.NotFound") {
		t.Errorf("an unknown instance id: %v, want InvalidInstanceID.NotFound", err)
	}
	st := a.mustCLI("viewer", "ec2", "describe-instance-status", "--instance-ids", live[0].ID)
	if s := dig(st, "InstanceStatuses", 0, "InstanceStatus", "Status"); s != "ok" {
		t.Errorf("describe-instance-status: %v, want ok", st)
	}

	// A viewer may not reboot; an operator may, and the instance restarts
	// in place (same id, a new process).
	if _, err := a.cli("viewer", "ec2", "reboot-instances", "--instance-ids", live[0].ID); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("a viewer's reboot: %v, want UnauthorizedOperation", err)
	}
	pid := live[0].Pid
	a.mustCLI("operator", "ec2", "reboot-instances", "--instance-ids", live[0].ID)
	waitFor(t, 30*time.Second, "the rebooted instance back in service with a new process", func() bool {
		for _, in := range a.live() {
			if in.ID == live[0].ID && in.State == "InService" && in.Pid != 0 && in.Pid != pid {
				return true
			}
		}
		return false
	})
	// Terminate: the group replaces the instance, as an Auto Scaling group.
	term := a.mustCLI("operator", "ec2", "terminate-instances", "--instance-ids", live[1].ID)
	if s := dig(term, "TerminatingInstances", 0, "CurrentState", "Name"); s != "shutting-down" {
		t.Errorf("terminate-instances: %v", term)
	}
	waitFor(t, 30*time.Second, "a replacement", func() bool {
		n := 0
		for _, in := range a.live() {
			if in.State == "InService" && in.ID != live[1].ID {
				n++
			}
		}
		return n == 2
	})
	// targets -o json shows the target group's ARN.
	if tgs, err := a.client.TargetGroups(context.Background()); err != nil || len(tgs) != 1 || tgs[0].ARN != awsid.TargetGroupARN("web") {
		t.Errorf("target groups' ARNs: %+v %v", tgs, err)
	}
	// Stop: as AWS's Auto Scaling does with a stopped instance, the group
	// replaces it; a start then finds nothing to start, and a start of a
	// running instance answers its state.
	cur := a.waitInService(2, 30*time.Second)
	stop := a.mustCLI("operator", "ec2", "stop-instances", "--instance-ids", cur[0].ID)
	if s := dig(stop, "StoppingInstances", 0, "CurrentState", "Name"); s != "stopping" {
		t.Errorf("stop-instances: %v", stop)
	}
	waitFor(t, 30*time.Second, "the stopped instance replaced", func() bool {
		n := 0
		for _, in := range a.live() {
			if in.State == "InService" && in.ID != cur[0].ID {
				n++
			}
		}
		return n == 2
	})
	if _, err := a.cli("operator", "ec2", "start-instances", "--instance-ids", cur[0].ID); err == nil || !strings.Contains(err.Error(), "IncorrectInstanceState") {
		t.Errorf("starting a stopped (replaced) instance: %v, want IncorrectInstanceState", err)
	}
	start := a.mustCLI("operator", "ec2", "start-instances", "--instance-ids", cur[1].ID)
	if s := dig(start, "StartingInstances", 0, "CurrentState", "Name"); s != "running" {
		t.Errorf("starting a running instance: %v", start)
	}
	// The audit trail names the key's profile and the action.
	if !strings.Contains(a.dumpEvents(), "operator aws ec2:RebootInstances -> 200") {
		t.Errorf("no audit event for the reboot:\n%s", a.dumpEvents())
	}
}

// TestAWSSeed001 runs seed 001's user data unchanged but for the
// endpoints: the instance reads its id from the metadata service and
// associates its Elastic IP (the group's address) with itself, with the
// credentials its group's role gives it; volumes and addresses show
// AWS's ids, and the fencing rules hold under EC2's API.
func TestAWSSeed001(t *testing.T) {
	t.Parallel()
	alloc := awsid.Allocation("pet", "http")
	port := freePort(t)
	home := t.TempDir()
	cfg := fmt.Sprintf(`
groups:
  - name: pet
    api_role: operator
    launch:
      command: {{PET}}
      stop_timeout: 2s
      env:
        PATH: /usr/bin:/bin
        HOME: %s
      user_data: |
        INSTANCEID=$(curl -s -m 60 $AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/instance-id)
        aws --endpoint-url $AWS_ENDPOINT_URL --region us-east-1 ec2 associate-address --instance-id $INSTANCEID --allocation-id %s > "$AUTOHEAL_VOLUME_DATA/associate.json"
    volumes:
      - name: data
    addresses:
      - name: http
        listen: 127.0.0.1:%d
        wait_timeout: 20s
    health_checks:
      - type: http
        path: /healthz
        interval: 100ms
        timeout: 100ms
        unhealthy_threshold: 2
  - name: other
    launch:
      command: {{PET}}
      stop_timeout: 2s
    volumes:
      - name: data
    addresses:
      - name: http
        listen: 127.0.0.1:%d
    health_checks:
      - type: http
        path: /healthz
        interval: 100ms
        timeout: 100ms
`, home, alloc, port, freePort(t))
	a := startAWS(t, cfg)
	live := a.waitInService(2, 30*time.Second)
	var pet, other string
	for _, in := range live {
		if in.Group == "pet" {
			pet = in.ID
		} else {
			other = in.ID
		}
	}
	b, err := os.ReadFile(filepath.Join(a.stateDir, "volumes", "pet", "data", "data", "associate.json"))
	if err != nil {
		t.Fatalf("the user data's associate-address left no output: %v\n%s", err, a.dumpEvents())
	}
	if want := awsid.Association(alloc, pet); !strings.Contains(string(b), want) {
		t.Errorf("associate-address answered %s, want association %s", b, want)
	}
	addr := a.mustCLI("viewer", "ec2", "describe-addresses", "--allocation-ids", alloc)
	if dig(addr, "Addresses", 0, "InstanceId") != pet || dig(addr, "Addresses", 0, "PublicIp") != "127.0.0.1" {
		t.Errorf("describe-addresses: %v, want held by %s", addr, pet)
	}
	// The other group's instance may not take the pet's address.
	if _, err := a.cli("operator", "ec2", "associate-address", "--instance-id", other, "--allocation-id", alloc); err == nil || !strings.Contains(err.Error(), "InvalidParameterCombination") {
		t.Errorf("associating another group's address: %v", err)
	}
	// Volumes: AWS ids, attached to the pet; attaching it to another
	// instance is refused with EC2's VolumeInUse, detaching it while the
	// pet runs with IncorrectState.
	vol := awsid.Volume("pet", "data")
	vols := a.mustCLI("viewer", "ec2", "describe-volumes", "--volume-ids", vol)
	if dig(vols, "Volumes", 0, "State") != "in-use" || dig(vols, "Volumes", 0, "Attachments", 0, "InstanceId") != pet {
		t.Errorf("describe-volumes: %v", vols)
	}
	if _, err := a.cli("operator", "ec2", "attach-volume", "--volume-id", vol, "--instance-id", other, "--device", "/dev/sdf"); err == nil || !strings.Contains(err.Error(), "VolumeInUse") {
		t.Errorf("attaching a held volume: %v, want VolumeInUse", err)
	}
	if _, err := a.cli("operator", "ec2", "detach-volume", "--volume-id", vol); err == nil || !strings.Contains(err.Error(), "IncorrectState") {
		t.Errorf("detaching a running pet's volume: %v, want IncorrectState", err)
	}
	// status -o json shows the same ids.
	st, err := a.client.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if ids := st.AWSIDs["pet"]; ids.Volumes["data"] != vol || ids.Addresses["http"] != alloc || ids.ARN != awsid.GroupARN("pet") {
		t.Errorf("status's aws_ids for pet: %+v", ids)
	}
	checkIMDS(t, a, pet, other)
}

// checkIMDS tries the metadata service as an instance and as a
// neighbour: IMDSv2 tokens bound to their instance, no credentials for a
// group without a role, nothing for a key autoheal did not make.
func checkIMDS(t *testing.T, a *awsEnv, pet, other string) {
	creds, err := api.LoadCredentials(a.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	base := func(id string) string { return "http://" + a.apiAddr + api.IMDSPrefix + creds.IMDSKey(id) + "/" }
	do := func(method, url string, header ...string) (int, string) {
		req, _ := http.NewRequest(method, url, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, tok := do(http.MethodPut, base(pet)+"latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "60")
	if code != 200 || tok == "" {
		t.Fatalf("IMDSv2 token: %d %s", code, tok)
	}
	if code, body := do(http.MethodGet, base(pet)+"latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); code != 200 || body != pet {
		t.Errorf("instance-id with a token: %d %q, want %s", code, body, pet)
	}
	if code, body := do(http.MethodGet, base(pet)+"latest/meta-data/placement/region"); code != 200 || body != awsid.Region {
		t.Errorf("region (IMDSv1): %d %q", code, body)
	}
	if code, body := do(http.MethodGet, base(pet)+"latest/meta-data/iam/security-credentials/autoheal-operator"); code != 200 || !strings.Contains(body, `"AccessKeyId": "ASIA`) {
		t.Errorf("the operator group's credentials: %d %s", code, body)
	}
	// The pet's token is not the other instance's.
	if code, _ := do(http.MethodGet, base(other)+"latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); code != http.StatusUnauthorized {
		t.Errorf("another instance's token: %d, want 401", code)
	}
	if code, _ := do(http.MethodPut, base(pet)+"latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "99999"); code != http.StatusBadRequest {
		t.Errorf("a token TTL over 6 hours: %d, want 400", code)
	}
	// A group without api_role gets no credentials, as an EC2 instance
	// without a profile.
	if code, body := do(http.MethodGet, base(other)+"latest/meta-data/iam/security-credentials/"); code != http.StatusNotFound {
		t.Errorf("credentials of a group without a role: %d %s, want 404", code, body)
	}
	if code, body := do(http.MethodGet, base(other)+"latest/meta-data/instance-id"); code != 200 || body != other {
		t.Errorf("the other instance's id: %d %q", code, body)
	}
	forged := "http://" + a.apiAddr + api.IMDSPrefix + pet + ".AAAAAAAAAAAAAAAAAAAAAAAA/latest/meta-data/instance-id"
	if code, _ := do(http.MethodGet, forged); code != http.StatusNotFound {
		t.Errorf("a forged metadata key: %d, want 404", code)
	}
}
