package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adhocore/gronx"
)

// FuzzLoad runs the whole path a config file takes, Load: the bounded
// read, the limits, the parser, the schema, the counts, the defaults and
// Validate. It must not panic, and it must say the same as Parse on the
// same bytes: the file path adds the bounded read, nothing else.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, lerr := Load(path)
		_, perr := Parse(path, data)
		if (lerr == nil) != (perr == nil) || lerr != nil && lerr.Error() != perr.Error() {
			t.Fatalf("Load and Parse disagree:\n%v\n%v", lerr, perr)
		}
		if lerr != nil {
			errs, ok := errors.AsType[*Errors](lerr)
			if !ok || len(*errs) == 0 {
				t.Fatalf("not a positioned *Errors: %v", lerr)
			}
		}
	})
}

// TestTagWithoutValue: "tokens: !t # comment" (found by FuzzLoad) made the
// YAML decoder dereference the missing value and take the process down.
func TestTagWithoutValue(t *testing.T) {
	_, err := Parse("c.yaml", []byte("groups: [{name: a, launch: {command: sh}}]\nauth:\n tokens: !000 #00000000000000"))
	if want := "c.yaml:3:10: tag !000 has no value"; err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// FuzzSchedule feeds CronFields arbitrary schedules. A schedule it accepts
// is five fields that it accepts again unchanged, and that fires.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * SUN", "@daily", "*/5 * * * *", "0 0 L * *", "0 0 * * 5#3", "0 0 15W * *",
		"0 0 30 2 *", "0 0 29 2 *", "1-59/2 0-23/3 1,15 JAN-DEC MON-FRI", "* * * * * *", "@every 5m", "60 * * * *"} {
		f.Add(s)
	}
	from := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		expr, err := CronFields(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty message")
			}
			return
		}
		if len(strings.Split(expr, " ")) != 5 {
			t.Fatalf("CronFields(%q) = %q: not five fields", s, expr)
		}
		again, err := CronFields(expr)
		if err != nil || again != expr {
			t.Fatalf("CronFields(%q) = %q, then %q, %v", s, expr, again, err)
		}
		if _, err := gronx.NextTickAfter(expr, from, false); err != nil {
			t.Fatalf("CronFields accepted %q, which never fires: %v", s, err)
		}
	})
}

// FuzzParseLimit feeds ParseLimit (max_concurrency, max_errors).
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"2", "25%", "100%", "101%", " 3 ", "-1", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, percent, err := ParseLimit(s)
		if err != nil {
			return
		}
		if n < 0 || n > 1<<20 || percent && n > 100 {
			t.Fatalf("ParseLimit(%q) = %d, %v", s, n, percent)
		}
	})
}

// FuzzUnits feeds the duration and size parsers of the config. What they
// accept is not negative, and reads back the same from its String.
func FuzzUnits(f *testing.F) {
	for _, s := range []string{"0", "10s", "1m30s", "-1s", "500ms", "10MiB", "1.5GiB", "512KiB", "1e3KB", "0x10B", "9223372036854775807", "8EiB", "NaNMB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil {
			if d < 0 {
				t.Fatalf("ParseDuration(%q) = %v", s, d)
			}
			if back, err := ParseDuration(d.String()); err != nil || back != d {
				t.Fatalf("ParseDuration(%q) = %v, read back as %v, %v", s, d, back, err)
			}
		}
		if n, err := ParseByteSize(s); err == nil {
			if n < 0 {
				t.Fatalf("ParseByteSize(%q) = %d", s, n)
			}
			if back, err := ParseByteSize(ByteSize(n).String()); err != nil || back != n {
				t.Fatalf("ParseByteSize(%q) = %d, read back as %d, %v", s, n, back, err)
			}
		}
	})
}
