// Command fleet measures a fleet of processes sharing tokens through the
// Redis store (cache/redisstore) against the local emulator, over loopback
// only, and prints a Markdown table. It starts redis-server itself on a
// free loopback port, and starts itself again as the fleet's processes.
// Run it from the benchmarks module:
//
//	cd benchmarks && go run ./cmd/fleet
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/azcred/azcred/benchmarks"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == benchmarks.FleetChildArg {
		os.Exit(benchmarks.FleetChild(os.Args[2:]))
	}
	var o benchmarks.FleetOptions
	flag.IntVar(&o.Processes, "processes", 12, "processes running at once")
	flag.DurationVar(&o.Duration, "duration", 24*time.Second, "length of each load run")
	flag.DurationVar(&o.RefreshIn, "refresh-in", 4*time.Second, "the emulator's refresh_in")
	flag.IntVar(&o.FirstTokenRuns, "first-token-runs", 20, "new processes timed for the first-token rows")
	flag.DurationVar(&o.Outage, "outage", 10*time.Second, "how long Redis is down in the outage run")
	flag.Parse()
	o.Progress = os.Stderr
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	o.Exe = exe
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	r, err := benchmarks.Fleet(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	fmt.Printf("%s, %s/%s, %d CPUs; whole run %v\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Since(start).Round(time.Second))
	fmt.Print(benchmarks.FleetTable(r))
}
