package awsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
)

var testKeys = []Key{
	{Name: "ops", ID: "AKIATESTOPERATOR0001", Secret: "operatorSecret0123456789", Role: "operator"},
	{Name: "ro", ID: "AKIATESTVIEWER000001", Secret: "viewerSecret0123456789ab", Role: "viewer"},
}

// endpoint is the API handler with the AWS endpoint and no groups; now
// is the endpoint's clock.
func endpoint(t *testing.T, now time.Time) http.Handler {
	t.Helper()
	creds, err := api.LoadCredentials(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	deps := api.Deps{Credentials: creds}
	h := New(deps, testKeys, nil)
	h.now = func() time.Time { return now }
	deps.AWS = h
	return api.New(deps)
}

// signed builds a request signed as the AWS CLI signs it, at signedAt.
func signed(k Key, svc, target, body string, signedAt time.Time) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:7070/aws", strings.NewReader(body))
	r.Host = "127.0.0.1:7070"
	stamp := signedAt.UTC().Format(amzDate)
	r.Header.Set("X-Amz-Date", stamp)
	signedHeaders := []string{"content-type", "host", "x-amz-date"}
	if target != "" {
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", target)
		signedHeaders = append(signedHeaders, "x-amz-target")
	} else {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	a := authHeader{KeyID: k.ID, Date: stamp[:8], Region: "us-east-1", Service: svc, SignedHeaders: signedHeaders}
	sum := sha256.Sum256([]byte(body))
	a.Signature = signature(k.Secret, a, stamp, canonicalRequest(r.Method, r.URL, r.Header, r.Host, signedHeaders, hex.EncodeToString(sum[:])))
	r.Header.Set("Authorization", algorithm+" Credential="+k.ID+"/"+a.scope()+", SignedHeaders="+strings.Join(signedHeaders, ";")+", Signature="+a.Signature)
	return r
}

func serve(h http.Handler, r *http.Request) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestEndpointAuthentication(t *testing.T) {
	now := time.Now()
	h := endpoint(t, now)
	const describe = "Action=DescribeInstances&Version=2016-11-15"
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		want   string
	}{
		{"a viewer describes", func() *http.Request { return signed(testKeys[1], "ec2", "", describe, now) }, 200, "<DescribeInstancesResponse"},
		{"signed 10 minutes ago", func() *http.Request { return signed(testKeys[1], "ec2", "", describe, now.Add(-10*time.Minute)) }, 403, "<Response><Errors><Error><Code>RequestExpired</Code>"},
		{"unknown key", func() *http.Request {
			return signed(Key{ID: "AKIAUNKNOWN000000001", Secret: "x"}, "ec2", "", describe, now)
		}, 403, "<Code>InvalidClientTokenId</Code>"},
		{"wrong secret", func() *http.Request {
			k := testKeys[1]
			k.Secret += "x"
			return signed(k, "ec2", "", describe, now)
		}, 403, "<Code>SignatureDoesNotMatch</Code>"},
		{"body changed after signing", func() *http.Request {
			r := signed(testKeys[1], "ec2", "", describe, now)
			r.Body = io.NopCloser(strings.NewReader("Action=RebootInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0"))
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"unsigned", func() *http.Request {
			r := signed(testKeys[1], "ec2", "", describe, now)
			r.Header.Del("Authorization")
			return r
		}, 403, "MissingAuthenticationToken"},
		{"a viewer reboots", func() *http.Request {
			return signed(testKeys[1], "ec2", "", "Action=RebootInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0", now)
		}, 403, "<Code>UnauthorizedOperation</Code>"},
		{"an instance key of no instance", func() *http.Request {
			return signed(Key{ID: "ASIA0123456789ABCDEF0", Secret: "x"}, "ec2", "", describe, now)
		}, 403, "InvalidClientTokenId"},
		{"a service that is not here", func() *http.Request { return signed(testKeys[0], "s3", "", describe, now) }, 403, "InvalidClientTokenId"},
		{"an action that is not here", func() *http.Request {
			return signed(testKeys[0], "ec2", "", "Action=RunInstances&Version=2016-11-15", now)
		}, 400, "<Code>InvalidAction</Code>"},
		{"SSM errors are JSON", func() *http.Request {
			return signed(Key{ID: "AKIAUNKNOWN000000001", Secret: "x"}, "ssm", "AmazonSSM.GetParameter", `{"Name":"x"}`, now)
		}, 403, `"__type":"InvalidClientTokenId"`},
		{"Auto Scaling errors are ErrorResponse", func() *http.Request {
			return signed(testKeys[1], "autoscaling", "", "Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=x&DesiredCapacity=1", now)
		}, 403, "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>AccessDenied</Code>"},
		{"a hostile page's signed form", func() *http.Request {
			r := signed(testKeys[0], "ec2", "", describe, now)
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403, "cross-origin"},
		{"a rebound name", func() *http.Request {
			r := signed(testKeys[0], "ec2", "", describe, now)
			r.Host = "evil.example:7070"
			return r
		}, 421, "DNS rebinding"},
		{"a 50 MB body", func() *http.Request {
			r := signed(testKeys[0], "monitoring", "", "Action=PutMetricData&Version=2010-08-01", now)
			r.Body = io.NopCloser(bytes.NewReader(make([]byte, 50<<20)))
			return r
		}, 413, "RequestEntityTooLarge"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := serve(h, c.req())
			if status != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("got %d %s\nwant %d and %q", status, body, c.status, c.want)
			}
		})
	}
}

// A follower's forwarded call reaches the leader without its
// Authorization: the protocol names the service.
func TestServiceOf(t *testing.T) {
	cases := []struct {
		name, scope, target, url, body, want string
	}{
		{"the scope", "monitoring", "", "/aws", "Action=DescribeInstances&Version=2016-11-15", "monitoring"},
		{"JSON's target", "", "AmazonSSM.GetParameter", "/aws", `{"Name":"x"}`, "ssm"},
		{"the body's Version", "", "", "/aws", "Action=DescribeAutoScalingGroups&Version=2011-01-01", "autoscaling"},
		{"the URL's Version", "", "", "/aws?Action=DescribeTargetGroups&Version=2015-12-01", "", "elasticloadbalancing"},
		{"nothing", "", "", "/aws", "Action=X", ""},
		{"an unknown Version", "", "", "/aws", "Action=X&Version=1999-01-01", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, c.url, nil)
		if c.target != "" {
			r.Header.Set("X-Amz-Target", c.target)
		}
		got := ""
		if s := serviceOf(r, c.scope, []byte(c.body)); s != nil {
			got = s.name
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
