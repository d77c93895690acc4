package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk output lines this parses.
var (
	rpsLine     = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	latencyLine = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$`)
	socketLine  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xxLine  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func runWrk(ctx context.Context, url string) (result, error) {
	var res result
	cmd := exec.CommandContext(ctx, "wrk",
		"-t"+strconv.Itoa(*threads), "-c"+strconv.Itoa(*connections), "-d"+strconv.Itoa(int(duration.Seconds()))+"s",
		"--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (result, error) {
	var res result
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	res.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range latencyLine.FindAllStringSubmatch(out, -1) {
		f, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[m[3]]
		d := time.Duration(f * unit)
		if m[1] == "50" {
			res.p50 = d
		} else {
			res.p99 = d
		}
	}
	if res.p50 == 0 || res.p99 == 0 {
		return res, fmt.Errorf("no latency distribution in wrk's output:\n%s", out)
	}
	var details []string
	if m := socketLine.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			res.errors += n
		}
		details = append(details, strings.TrimSpace(m[0]))
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		res.errors += n
		details = append(details, m[0])
	}
	if res.rps == 0 {
		return res, fmt.Errorf("no request completed:\n%s", out)
	}
	res.detail = strings.Join(details, "; ")
	return res, nil
}
