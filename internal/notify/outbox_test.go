package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	const base, max = time.Second, 5 * time.Minute
	for _, tc := range []struct {
		attempt  int
		jitter   float64
		min, max time.Duration
	}{
		{1, 0, 500 * time.Millisecond, 500 * time.Millisecond},
		{1, 0.999999, 999 * time.Millisecond, time.Second},
		{2, 0, time.Second, time.Second},
		{4, 0.5, 6 * time.Second, 6 * time.Second},
		{9, 1, 256 * time.Second, 256 * time.Second},
		{10, 0, 150 * time.Second, 150 * time.Second}, // 512s capped at 5m, halved
		{10, 1, max, max},
		{1000, 0.5, 225 * time.Second, 225 * time.Second}, // no overflow
	} {
		got := backoff(tc.attempt, base, max, tc.jitter)
		if got < tc.min || got > tc.max {
			t.Errorf("backoff(%d, jitter %v) = %v, want in [%v, %v]", tc.attempt, tc.jitter, got, tc.min, tc.max)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   outcome
	}{
		{"200", 200, nil, delivered},
		{"202 pagerduty", 202, nil, delivered},
		{"no response", 0, errors.New("connection refused"), retryable},
		{"408", 408, errors.New("x"), retryable},
		{"429", 429, errors.New("x"), retryable},
		{"500", 500, errors.New("x"), retryable},
		{"503", 503, errors.New("x"), retryable},
		{"400", 400, errors.New("x"), permanent},
		{"401", 401, errors.New("x"), permanent},
		{"404", 404, errors.New("x"), permanent},
		{"302", 302, errors.New("x"), permanent},
		{"format", 0, &permanentError{errors.New("x")}, permanent},
	} {
		if got := classify(tc.status, tc.err); got != tc.want {
			t.Errorf("%s: classify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999999", 86400 * time.Second},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é", 10) // 2 bytes each
	for n := 4; n <= 21; n++ {
		got := truncate(s, n)
		if len(got) > n || !utf8.ValidString(got) {
			t.Fatalf("truncate(%d) = %q (%d bytes)", n, got, len(got))
		}
	}
	if truncate("short", 10) != "short" {
		t.Fatal("truncated a short string")
	}
}

// TestRenderSignsEveryAttempt: the webhook signature covers the attempt's
// own timestamp, so a retry is signed afresh.
func TestRenderSignsEveryAttempt(t *testing.T) {
	t.Parallel()
	c := ChannelSpec{Name: "ops", Type: TypeWebhook, URL: "http://x", Secret: "k"}
	m := incident("inc-1", EventTrigger)
	for _, at := range []time.Time{t0, t0.Add(time.Minute)} {
		req, err := render(c, 7, m, at)
		if err != nil {
			t.Fatal(err)
		}
		ts := req.header.Get(HeaderTimestamp)
		if !Verify("k", ts, req.body, req.header.Get(HeaderSignature)) {
			t.Fatalf("attempt at %v: signature does not verify", at)
		}
	}
	c.Secret = ""
	req, err := render(c, 7, m, t0)
	if err != nil {
		t.Fatal(err)
	}
	if req.header.Get(HeaderSignature) != "" {
		t.Fatal("signed without a secret")
	}
}
