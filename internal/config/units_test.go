package config

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond, "0": 0, "": 0, "1h": time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got.D() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"10x": `invalid duration "10x": use a number with a unit, like 500ms, 10s or 1m30s`,
		"10":  `invalid duration "10": use a number with a unit, like 500ms, 10s or 1m30s`,
		"-1s": `invalid duration "-1s": must not be negative`,
	} {
		if _, err := ParseDuration(in); errString(err) != msg {
			t.Errorf("ParseDuration(%q): %v, want %s", in, err, msg)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 250 * time.Millisecond: "250ms", 10 * time.Second: "10s", 2 * time.Minute: "2m",
		90 * time.Second: "1m30s", time.Hour: "1h", time.Hour + time.Second: "1h0m1s", 90 * time.Minute: "1h30m",
	} {
		got := Duration(d).String()
		if got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(got); err != nil || back.D() != d {
			t.Errorf("%q reads back as %v, %v", got, back, err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"100": 100, "0": 0, "100B": 100, "1KiB": 1024, "512KiB": 512 << 10, "10MiB": 10 << 20, "1GiB": 1 << 30,
		"10MB": 10e6, "1KB": 1000, "1.5KiB": 1536, " 2 MiB ": 2 << 20,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "-1KiB", "10XB", "10mib", "1e3", "1.5", "Inf", "NaN", "KiB", "99999999TiB"} {
		if n, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, n)
		}
	}
	for _, s := range []ByteSize{0, 100, 1536, 1 << 20, 10 << 20, 1 << 30, 3 << 40} {
		if back, err := ParseByteSize(s.String()); err != nil || ByteSize(back) != s {
			t.Errorf("%d -> %q -> %d, %v", s, s.String(), back, err)
		}
	}
}

func TestSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "": syscall.SIGTERM, "INT": syscall.SIGINT,
		"sigkill": syscall.SIGKILL, "HUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1, "usr2": syscall.SIGUSR2, "QUIT": syscall.SIGQUIT,
	} {
		if got, err := Signal(in); err != nil || got != want {
			t.Errorf("Signal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGFOO", "SIGSTOP", "15", "SIG"} {
		if _, err := Signal(bad); err == nil || !strings.Contains(err.Error(), "SIGTERM") {
			t.Errorf("Signal(%q) = %v, want an error listing the signals", bad, err)
		}
	}
}
