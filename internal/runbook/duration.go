package runbook

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// iso8601RE is a duration of ISO 8601 as SSM writes them: PT30S, PT1H30M,
// P1DT12H. Years, months and weeks are left out: their length varies.
var iso8601RE = regexp.MustCompile(`^P(?:(\d{1,9})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9}(?:\.\d{1,9})?)S)?)?$`)

// maxDuration bounds durations far below where time.Duration overflows.
const maxDuration = 10 * 365 * 24 * time.Hour

// ParseDuration reads the Duration of a sleep step: an ISO 8601 duration
// (PT30S, PT1H30M, P1D), as in SSM, or a Go duration (30s, 1h30m).
func ParseDuration(s string) (time.Duration, error) {
	if m := iso8601RE.FindStringSubmatch(s); m != nil && s != "P" && s[len(s)-1] != 'T' {
		var secs float64
		for i, unit := range []float64{24 * 3600, 3600, 60, 1} {
			if m[i+1] == "" {
				continue
			}
			n, err := strconv.ParseFloat(m[i+1], 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration: %v", s, err)
			}
			secs += n * unit
		}
		if secs > maxDuration.Seconds() {
			return 0, fmt.Errorf("%q is too long", s)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration like PT30S or 30s", s)
	case d < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case d > maxDuration:
		return 0, fmt.Errorf("%q is too long", s)
	}
	return d, nil
}
