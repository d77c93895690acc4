package awsapi

import (
	"bytes"
	"encoding/xml"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/lb"
)

// TestELBTargetHealthMapping pins how the load balancer's target states
// and reasons read as ELBv2's DescribeTargetHealth.
func TestELBTargetHealthMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     lb.TargetHealth
		id     string
		port   int
		state  string
		reason string
		desc   string
	}{
		{"healthy", lb.TargetHealth{ID: "i-0123456789abcdef0", Address: "127.0.0.1:8080", State: lb.StateHealthy, Reason: "passed 2 health checks in a row: HTTP 200"},
			"i-0123456789abcdef0", 8080, "healthy", "", "passed 2 health checks in a row: HTTP 200"},
		{"registered", lb.TargetHealth{ID: "i-1", Address: "127.0.0.1:8081", State: lb.StateInitial, Reason: "registered"},
			"i-1", 8081, "initial", "Elb.RegistrationInProgress", "registered"},
		{"initial checks", lb.TargetHealth{ID: "i-1", Address: "127.0.0.1:8081", State: lb.StateInitial},
			"i-1", 8081, "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"},
		{"timeout", lb.TargetHealth{ID: "i-2", Address: "10.0.0.2:80", State: lb.StateUnhealthy, Reason: "failed 2 health checks in a row: timed out after 500ms"},
			"i-2", 80, "unhealthy", "Target.Timeout", "failed 2 health checks in a row: timed out after 500ms"},
		{"code mismatch", lb.TargetHealth{ID: "i-2", Address: "10.0.0.2:80", State: lb.StateUnhealthy, Reason: "failed 2 health checks in a row: HTTP 500 does not match 200-399"},
			"i-2", 80, "unhealthy", "Target.ResponseCodeMismatch", "failed 2 health checks in a row: HTTP 500 does not match 200-399"},
		{"refused", lb.TargetHealth{ID: "i-2", Address: "10.0.0.2:80", State: lb.StateUnhealthy, Reason: "connection refused"},
			"i-2", 80, "unhealthy", "Target.FailedHealthChecks", "connection refused"},
		{"draining", lb.TargetHealth{ID: "i-3", Address: "127.0.0.1:9000", State: lb.StateDraining, Reason: "deregistered by operator"},
			"i-3", 9000, "draining", "Target.DeregistrationInProgress", "deregistered by operator"},
		{"unused", lb.TargetHealth{ID: "i-3", Address: "127.0.0.1:9000", State: lb.StateUnused, Reason: "deregistered"},
			"i-3", 9000, "unused", "Target.NotRegistered", "deregistered"},
		{"ip target", lb.TargetHealth{ID: "192.0.2.7:8443", Address: "192.0.2.7:8443", State: lb.StateHealthy},
			"192.0.2.7", 8443, "healthy", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := elbDescribe(tc.in)
			if d.Target.ID != tc.id || d.Target.Port != tc.port {
				t.Errorf("target %+v, want Id %s Port %d", d.Target, tc.id, tc.port)
			}
			if d.TargetHealth.State != tc.state || d.TargetHealth.Reason != tc.reason || d.TargetHealth.Description != tc.desc {
				t.Errorf("health %+v, want %s %s %q", d.TargetHealth, tc.state, tc.reason, tc.desc)
			}
		})
	}
	nr := elbNotRegistered(elbTargetRef{ID: "i-9", Port: 80})
	if nr.TargetHealth != (elbTargetHealth{"unused", "Target.NotRegistered", awsid.NotRegisteredDescription}) || nr.HealthCheckPort != "" {
		t.Errorf("not registered: %+v", nr)
	}
}

func TestELBFind(t *testing.T) {
	ts := []lb.TargetHealth{
		{ID: "i-1", Address: "127.0.0.1:8080"},
		{ID: "192.0.2.7:80", Address: "192.0.2.7:80"},
	}
	for _, tc := range []struct {
		ref  elbTargetRef
		want int
	}{
		{elbTargetRef{ID: "i-1"}, 0},
		{elbTargetRef{ID: "i-1", Port: 8080}, 0},
		{elbTargetRef{ID: "i-1", Port: 9090}, -1},
		{elbTargetRef{ID: "192.0.2.7", Port: 80}, 1},
		{elbTargetRef{ID: "192.0.2.7:80"}, 1},
		{elbTargetRef{ID: "i-2"}, -1},
	} {
		if got := elbFind(ts, tc.ref); got != tc.want {
			t.Errorf("elbFind(%s) = %d, want %d", tc.ref, got, tc.want)
		}
	}
}

func TestELBTargetsParam(t *testing.T) {
	p := url.Values{"Targets.member.2.Id": {"i-2"}, "Targets.member.1.Id": {"i-1"}, "Targets.member.1.Port": {"8080"}}
	got, err := elbTargets(p, true)
	if err != nil || len(got) != 2 || got[0] != (elbTargetRef{"i-1", 8080}) || got[1] != (elbTargetRef{"i-2", 0}) {
		t.Fatalf("elbTargets = %+v, %v", got, err)
	}
	for _, bad := range []url.Values{
		{},
		{"Targets.member.1.Port": {"80"}},
		{"Targets.member.1.Id": {"i-1"}, "Targets.member.1.Port": {"http"}},
		{"Targets.member.1.Id": {"i-1"}, "Targets.member.1.Port": {"70000"}},
	} {
		if _, err := elbTargets(bad, true); err == nil || asAPIError(err).Code != "ValidationError" {
			t.Errorf("elbTargets(%v) = %v, want a ValidationError", bad, err)
		}
	}
}

// TestELBResultXML pins the Query protocol's shapes: lists of <member>,
// an empty list as an empty element.
func TestELBResultXML(t *testing.T) {
	enc := func(v any) string {
		var b bytes.Buffer
		if err := xml.NewEncoder(&b).EncodeElement(v, xml.StartElement{Name: xml.Name{Local: "R"}}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	empty := &describeTargetHealthResult{TargetHealthDescriptions: queryList[elbTargetHealthDescription]{Member: []elbTargetHealthDescription{}}}
	if got := enc(empty); got != "<R><TargetHealthDescriptions></TargetHealthDescriptions></R>" {
		t.Errorf("empty: %s", got)
	}
	one := &describeTargetHealthResult{TargetHealthDescriptions: queryList[elbTargetHealthDescription]{Member: []elbTargetHealthDescription{
		elbDescribe(lb.TargetHealth{ID: "i-1", Address: "127.0.0.1:8080", State: "draining", Reason: "deregistered by operator"}),
	}}}
	want := "<R><TargetHealthDescriptions><member><Target><Id>i-1</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort>" +
		"<TargetHealth><State>draining</State><Reason>Target.DeregistrationInProgress</Reason><Description>deregistered by operator</Description></TargetHealth></member></TargetHealthDescriptions></R>"
	if got := enc(one); got != want {
		t.Errorf("one:\n got %s\nwant %s", got, want)
	}
	h := &Handler{}
	tg := enc(h.elbTargetGroupOf(lb.Health{Name: "web", Protocol: "http", Targets: []lb.TargetHealth{{ID: "i-1", Address: "127.0.0.1:8080"}}}))
	for _, part := range []string{"<TargetGroupArn>" + awsid.TargetGroupARN("web") + "</TargetGroupArn>", "<Protocol>HTTP</Protocol>",
		"<Port>8080</Port>", "<TargetType>instance</TargetType>", "<LoadBalancerArns></LoadBalancerArns>"} {
		if !strings.Contains(tg, part) {
			t.Errorf("target group lacks %s: %s", part, tg)
		}
	}
}

// configBalancer is a balancer that tells its configuration.
type configBalancer struct{ lbs []config.LoadBalancer }

func (configBalancer) TargetGroups() []lb.Health                   { return nil }
func (configBalancer) TargetGroup(string) (api.TargetGroup, error) { return nil, lb.ErrNotFound }
func (b configBalancer) LoadBalancers() []config.LoadBalancer      { return b.lbs }

func TestELBTargetGroupFromConfig(t *testing.T) {
	cfg := config.LoadBalancer{Name: "front",
		Listeners: []config.Listener{{Protocol: "http", Listen: "127.0.0.1:80", TargetGroup: "web"}},
		TargetGroups: []config.TargetGroup{{Name: "web", Protocol: "http", Groups: []config.TargetGroupMember{{Group: "web", Port: "http"}},
			HealthCheck: config.TargetHealthCheck{Path: "/healthz", Interval: config.Duration(5 * time.Second), Timeout: config.Duration(2 * time.Second),
				HealthyThreshold: 3, UnhealthyThreshold: 2}}}}
	h := &Handler{deps: api.Deps{Balancer: configBalancer{[]config.LoadBalancer{cfg}}}}
	got := h.elbTargetGroupOf(lb.Health{Name: "web", Protocol: "http"})
	want := elbTargetGroupXML{
		TargetGroupArn: awsid.TargetGroupARN("web"), TargetGroupName: "web", Protocol: "HTTP", HealthCheckProtocol: "HTTP",
		HealthCheckPort: "traffic-port", HealthCheckEnabled: true, HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 2,
		HealthyThresholdCount: 3, UnhealthyThresholdCount: 2, HealthCheckPath: "/healthz", Matcher: &elbMatcher{"200-399"},
		LoadBalancerArns: queryList[string]{Member: []string{awsid.LoadBalancerARN("front")}},
		TargetType:       "instance", ProtocolVersion: "HTTP1", IPAddressType: "ipv4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
