// Command sidebyside measures azcred and azidentity side by side against the
// local emulator, over loopback only, and prints a Markdown table with the
// machine and versions it ran on. Run it from the benchmarks module:
//
//	cd benchmarks && go run ./cmd/sidebyside
//
// Progress goes to stderr, the table to stdout. It needs no network once the
// modules are downloaded (`go mod download`); it changes its own PATH and
// AZURE_* environment while it measures the developer-tool rows, which is
// why it is a program of its own.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/azcred/azcred/benchmarks"
)

func main() {
	// When started by the developer-loop rows as one of their processes.
	benchmarks.ChildMain()
	var o benchmarks.RunOptions
	flag.IntVar(&o.FirstTokenRuns, "first-token-runs", 20, "new credentials timed for the first-token rows")
	flag.IntVar(&o.CachedRepeats, "cached-repeats", 3, "runs of each cached GetToken benchmark; the table shows the median")
	flag.IntVar(&o.StormCallers, "storm-callers", 1000, "callers released at expiry in the refresh storm")
	flag.IntVar(&o.CLICalls, "cli-calls", 100, "GetToken calls of AzureCLICredential")
	flag.DurationVar(&o.CLILatency, "cli-latency", 20*time.Millisecond, "latency of the fake az in the AzureCLICredential rows")
	flag.DurationVar(&o.LaptopAzLatency, "laptop-az-latency", 300*time.Millisecond, "latency of the fake az in the laptop row")
	flag.BoolVar(&o.SkipBinarySize, "skip-binary-size", false, "leave out the binary-size row (it runs go build)")
	flag.Parse()
	o.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start, load := time.Now(), loadAverage()
	table, err := benchmarks.Run(ctx, &o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
	fmt.Printf("%s, %s %s/%s, %s, %d CPUs, GOMAXPROCS=%d; %s; whole run %.0f s; load average %s before, %s after\n\n",
		start.UTC().Format("2006-01-02"), runtime.Version(), runtime.GOOS, runtime.GOARCH, cpuModel(),
		runtime.NumCPU(), runtime.GOMAXPROCS(0), versions(), time.Since(start).Seconds(), load, loadAverage())
	fmt.Print(table.Markdown())
}

// versions names the azidentity and azcore versions this binary was built
// with.
func versions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "module versions unknown"
	}
	var parts []string
	for _, d := range info.Deps {
		switch d.Path {
		case "github.com/Azure/azure-sdk-for-go/sdk/azidentity":
			parts = append(parts, "azidentity "+d.Version)
		case "github.com/Azure/azure-sdk-for-go/sdk/azcore":
			parts = append(parts, "azcore "+d.Version)
		case "github.com/AzureAD/microsoft-authentication-library-for-go":
			parts = append(parts, "MSAL "+d.Version)
		}
	}
	return strings.Join(parts, ", ")
}

// loadAverage is the one-minute load average on Linux, which says how
// busy the machine was with other work; elsewhere it is "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuModel reads the processor's name on Linux; elsewhere it says nothing.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown"
}
