// Command autoheal keeps stateful pet applications alive. main only wires
// signals and the exit code; everything else is in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/autoheal/autoheal/internal/cli"
	"github.com/autoheal/autoheal/internal/provider/local"
	"github.com/autoheal/autoheal/internal/vip"
)

func main() {
	// The same binary is the per-instance shim and its exec trampoline.
	if local.Init() {
		return
	}
	// And the holder of a cluster host's virtual IPs.
	if vip.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
