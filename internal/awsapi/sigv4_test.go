package awsapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// AWS's own example of a signed request (the SigV4 documentation's IAM
// ListUsers call): the canonical request's hash and the signature are
// AWS's published values.
const (
	docSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	docSignature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	docAuth      = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + docSignature
)

var docTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func docRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	r.Header.Set("Authorization", docAuth)
	return r
}

func TestSignatureOfAWSExample(t *testing.T) {
	r := docRequest()
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(r, a, docSecret, nil, docTime); err != nil {
		t.Fatalf("AWS's own example refused: %v", err)
	}
}

// TestVerifyRefuses: every change to a signed request, its time or its
// secret is refused, with AWS's error code.
func TestVerifyRefuses(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(r *http.Request)
		secret string
		body   []byte
		now    time.Time
		code   string
	}{
		{name: "as signed", code: ""},
		{name: "4 minutes later", now: docTime.Add(4 * time.Minute), code: ""},
		{name: "6 minutes later", now: docTime.Add(6 * time.Minute), code: "RequestExpired"},
		{name: "6 minutes early", now: docTime.Add(-6 * time.Minute), code: "RequestExpired"},
		{name: "other secret", secret: docSecret + "x", code: "SignatureDoesNotMatch"},
		{name: "other action", edit: func(r *http.Request) { r.URL.RawQuery = "Action=DeleteUser&Version=2010-05-08" }, code: "SignatureDoesNotMatch"},
		{name: "other host", edit: func(r *http.Request) { r.Host = "evil.example.com" }, code: "SignatureDoesNotMatch"},
		{name: "other method", edit: func(r *http.Request) { r.Method = http.MethodPost }, code: "SignatureDoesNotMatch"},
		{name: "other path", edit: func(r *http.Request) { r.URL.Path = "/x" }, code: "SignatureDoesNotMatch"},
		{name: "a body added", body: []byte("Action=DeleteUser"), code: "SignatureDoesNotMatch"},
		{name: "signed content type changed", edit: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, code: "SignatureDoesNotMatch"},
		{name: "payload hash header lies", edit: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64)) }, code: "SignatureDoesNotMatch"},
		{name: "no date", edit: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, code: "IncompleteSignature"},
		{name: "date of another day than the scope", edit: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20150831T123600Z") }, code: "SignatureDoesNotMatch"},
		{name: "signature flipped", edit: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(docAuth, "5d672d79", "5d672d78", 1))
		}, code: "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := docRequest()
			if c.edit != nil {
				c.edit(r)
			}
			a, aerr := parseAuthorization(r.Header.Get("Authorization"))
			if aerr != nil {
				t.Fatal(aerr)
			}
			secret, now := docSecret, docTime
			if c.secret != "" {
				secret = c.secret
			}
			if !c.now.IsZero() {
				now = c.now
			}
			err := verify(r, a, secret, c.body, now)
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.code != "" && (err == nil || err.Code != c.code):
				t.Fatalf("got %v, want %s", err, c.code)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	cases := []struct{ header, code string }{
		{docAuth, ""},
		{"", "MissingAuthenticationToken"},
		{"Bearer ah_token", "IncompleteSignature"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam, SignedHeaders=host;x-amz-date, Signature=00", "IncompleteSignature"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date, Signature=00", "IncompleteSignature"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date;host, Signature=00", "IncompleteSignature"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date", "IncompleteSignature"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, Credential=X/20150830/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00", "IncompleteSignature"},
	}
	for _, c := range cases {
		_, err := parseAuthorization(c.header)
		if c.code == "" && err != nil || c.code != "" && (err == nil || err.Code != c.code) {
			t.Errorf("%q: got %v, want %q", c.header, err, c.code)
		}
	}
}

func TestURIEncode(t *testing.T) {
	for in, want := range map[string]string{
		"abc-_.~XYZ09": "abc-_.~XYZ09",
		"a b":          "a%20b",
		"a+b=c&d":      "a%2Bb%3Dc%26d",
		"é":            "%C3%A9",
		"/":            "%2F",
	} {
		if got := uriEncode(in); got != want {
			t.Errorf("uriEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

// A body over MaxBody is refused before its signature is computed.
func TestReadBodyBound(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/aws", bytes.NewReader(make([]byte, MaxBody+1)))
	if _, err := readBody(r); err == nil || err.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body of MaxBody+1 bytes: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/aws", bytes.NewReader(make([]byte, MaxBody)))
	if b, err := readBody(r); err != nil || len(b) != MaxBody {
		t.Fatalf("a body of MaxBody bytes: %v", err)
	}
}
