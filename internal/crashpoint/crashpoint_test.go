//go:build crashpoints

package crashpoint

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestHitKillsAtTheNamedHit runs this test binary as a child that hits a
// point three times and checks that it died by SIGKILL at the second hit.
func TestHitKillsAtTheNamedHit(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		for i := 1; i <= 3; i++ {
			os.Stdout.WriteString("before " + string(rune('0'+i)) + "\n")
			Hit("other")
			Hit("p")
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHitKillsAtTheNamedHit$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", "AUTOHEAL_CRASH_AT=p@2")
	out, err := cmd.Output()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended %v (%v), want SIGKILL", cmd.ProcessState, err)
	}
	if got := string(out); !strings.Contains(got, "before 2") || strings.Contains(got, "before 3") {
		t.Fatalf("child output %q, want it killed during the second round", got)
	}
}
