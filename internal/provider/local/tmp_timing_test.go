//go:build linux

package local_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
)

func TestTmpTiming(t *testing.T) {
	l, _ := newLocal(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		p, _ := l.Launch(ctx, provider.Spec{ID: provider.NewInstanceID(), Command: "/bin/sleep", Args: []string{"1000"}})
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		syscall.Kill(p.Pid(), syscall.SIGKILL)
		<-p.Done()
		td := time.Now()
		l.Stop(ctx, p, syscall.SIGTERM, time.Second)
		tf := time.Now()
		time.Sleep(10 * time.Millisecond)
		b, _ := os.ReadFile(filepath.Join(l.InstanceDir(p.ID()), "shim.log"))
		t.Logf("kill=%d done=%d fenced=%d %s", t0.UnixNano(), td.UnixNano(), tf.UnixNano(), b)
	}
}
