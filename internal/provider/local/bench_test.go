//go:build linux

package local_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/provider/local"
)

// The benchmarks measure the shim path against a baseline of plain
// exec.Command in the same iterations, so that machine noise hits both, and
// report each as a metric: baseline-ms/op, shim-ms/op, overhead-ms/op.
// (ns/op is their sum and means little.) Run without -race:
//
//	go test -run '^$' -bench . -benchtime 100x ./internal/provider/local/

func report(b *testing.B, base, shim time.Duration) {
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
	b.ReportMetric(ms(base), "baseline-ms/op")
	b.ReportMetric(ms(shim), "shim-ms/op")
	b.ReportMetric(ms(shim-base), "overhead-ms/op")
}

// BenchmarkLaunchToExit: from the start of /bin/true to its exit being
// known, and the fence (Stop) a heal does next. "fresh" starts the shim in
// Launch; "spare" hands the instance to a spare shim started beforehand
// (the default; the benchmark lets it get ready between iterations, as it
// does between heals); "trampoline" adds a listener (socket-mode address),
// which costs one more start of the binary.
func BenchmarkLaunchToExit(b *testing.B) {
	for _, mode := range []string{"fresh", "spare", "spare+trampoline"} {
		b.Run(mode, func(b *testing.B) {
			l, _ := newLocalMode(b, mode != "fresh")
			spec := provider.Spec{Command: "/bin/true"}
			if mode == "spare+trampoline" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				f, _ := ln.(*net.TCPListener).File()
				defer f.Close()
				spec.Listeners = []provider.Listener{{Name: "http", File: f}}
			}
			ctx := context.Background()
			var base, shim, fence time.Duration
			for b.Loop() {
				if mode != "fresh" {
					b.StopTimer()
					local.WarmSpare(l) // started and waiting: its start-up done
					b.StartTimer()
				}
				t0 := time.Now()
				if err := exec.Command("/bin/true").Run(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				spec.ID = provider.NewInstanceID()
				p, err := l.Launch(ctx, spec)
				if err != nil {
					b.Fatal(err)
				}
				<-p.Done()
				t2 := time.Now()
				if err := l.Stop(ctx, p, syscall.SIGTERM, time.Second); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				if e := p.Exit(); e.Code != 0 {
					b.Fatalf("exit %+v", e)
				}
				base += t1.Sub(t0)
				shim += t2.Sub(t1)
				fence += t3.Sub(t2)
			}
			report(b, base, shim)
			b.ReportMetric(float64(fence)/float64(time.Millisecond)/float64(b.N), "fence-ms/op")
		})
	}
}

// BenchmarkExitDetection: from SIGKILL of a running program to its exit
// being known: Wait's return for the baseline, Done for the shim path
// (the shim reaps, records status.json durably and exits; the controller's
// pidfd fires and it reads the status).
func BenchmarkExitDetection(b *testing.B) {
	l, _ := newLocal(b)
	ctx := context.Background()
	var base, shim time.Duration
	for b.Loop() {
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		p, err := l.Launch(ctx, provider.Spec{ID: provider.NewInstanceID(), Command: "/bin/sleep", Args: []string{"1000"}})
		if err != nil {
			b.Fatal(err)
		}

		t0 := time.Now()
		cmd.Process.Kill()
		cmd.Wait()
		t1 := time.Now()
		syscall.Kill(p.Pid(), syscall.SIGKILL)
		<-p.Done()
		t2 := time.Now()

		if e := p.Exit(); e.Signal != "SIGKILL" {
			b.Fatalf("exit %+v", e)
		}
		if err := l.Stop(ctx, p, syscall.SIGTERM, time.Second); err != nil {
			b.Fatal(err)
		}
		base += t1.Sub(t0)
		shim += t2.Sub(t1)
	}
	report(b, base, shim)
}

// BenchmarkRun: a hook or exec health check (`/bin/sh -c true`) through Run
// against exec.Command of the same. "mounts" adds a bind mount in a private
// mount namespace (root only), made on a thread of the caller without any
// helper process.
func BenchmarkRun(b *testing.B) {
	for _, mode := range []string{"plain", "mounts"} {
		b.Run(mode, func(b *testing.B) {
			l, dir := newLocal(b)
			spec := provider.Spec{ID: provider.NewInstanceID()}
			if mode == "mounts" {
				if os.Geteuid() != 0 {
					b.Skip("bind mounts need root")
				}
				spec.Mounts = []provider.Mount{{Source: dir, Target: filepath.Join(dir, "mnt")}}
			}
			ctx := context.Background()
			var base, shim time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := exec.Command("/bin/sh", "-c", "true").Run(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				res, err := l.Run(ctx, spec, "true", 10*time.Second)
				if err != nil || res.ExitCode != 0 {
					b.Fatalf("%v %+v", err, res)
				}
				t2 := time.Now()
				base += t1.Sub(t0)
				shim += t2.Sub(t1)
			}
			report(b, base, shim)
		})
	}
}

// BenchmarkHealCycle: the provider's share of a heal, from SIGKILL of a
// running program to its successor running: exit detection (Done), the
// fence (Stop) and the Launch through a ready spare shim; beside a
// baseline that kills, waits for and starts the same program with
// exec.Command. Each iteration runs it once under every fence this host
// allows, in turn, so that machine noise hits all alike. Medians, not
// means: one descheduled iteration on a busy machine would dominate a mean.
func BenchmarkHealCycle(b *testing.B) {
	type variant struct {
		name       string
		l          *local.Local
		p          provider.Process
		heal, stop []time.Duration
	}
	ctx := context.Background()
	spec := provider.Spec{Command: "/bin/sleep", Args: []string{"1000"}}
	var vs []*variant
	for _, noNS := range []bool{false, true} {
		l, _ := newLocalWith(b, local.Options{NoPIDNamespace: noNS})
		if !noNS && l.Fence() == local.FenceSubreaper {
			continue // no namespaces here: the subreaper variant follows
		}
		spec.ID = provider.NewInstanceID()
		p, err := l.Launch(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		vs = append(vs, &variant{name: l.Fence().String(), l: l, p: p})
	}
	base := exec.Command("/bin/sleep", "1000")
	if err := base.Start(); err != nil {
		b.Fatal(err)
	}
	var baseline []time.Duration
	for b.Loop() {
		t0 := time.Now()
		base.Process.Kill()
		base.Wait()
		base = exec.Command("/bin/sleep", "1000")
		if err := base.Start(); err != nil {
			b.Fatal(err)
		}
		baseline = append(baseline, time.Since(t0))
		for _, v := range vs {
			b.StopTimer()
			local.WarmSpare(v.l) // as between heals: the spare is ready
			b.StartTimer()
			t0 := time.Now()
			syscall.Kill(v.p.Pid(), syscall.SIGKILL)
			<-v.p.Done()
			t1 := time.Now()
			if err := v.l.Stop(ctx, v.p, syscall.SIGTERM, time.Second); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			spec.ID = provider.NewInstanceID()
			p, err := v.l.Launch(ctx, spec)
			if err != nil {
				b.Fatal(err)
			}
			v.p = p
			v.heal = append(v.heal, time.Since(t0))
			v.stop = append(v.stop, t2.Sub(t1))
		}
	}
	base.Process.Kill()
	base.Wait()
	for _, v := range vs {
		v.l.Stop(ctx, v.p, syscall.SIGKILL, 0)
	}
	b.ReportMetric(median(baseline), "baseline-ms")
	for _, v := range vs {
		b.ReportMetric(median(v.heal), v.name+"-ms")
		b.ReportMetric(median(v.stop), v.name+"-stop-ms")
	}
}

// median in milliseconds.
func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}
