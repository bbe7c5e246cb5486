package benchmarks

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// RunOptions contains optional parameters for Run.
type RunOptions struct {
	// FirstTokenRuns is how many new credentials [FirstToken] times.
	// Default: 20.
	FirstTokenRuns int

	// CachedRepeats is how many times each cached GetToken benchmark runs,
	// alternating between the libraries; the table shows the median run,
	// which steadies the figures on a shared machine. Default: 3.
	CachedRepeats int

	// StormCallers is how many callers [Storm] releases at expiry.
	// Default: 1000.
	StormCallers int

	// CLICalls is how many GetToken calls [AzureCLI] makes. Default: 100.
	CLICalls int

	// CLILatency is how long the fake az takes in [AzureCLI]. Default: 20 ms.
	CLILatency time.Duration

	// LaptopAzLatency is how long the fake az takes in [Laptop].
	// Default: 300 ms.
	LaptopAzLatency time.Duration

	// ModuleDir is the benchmarks module's directory, for [BinarySizes].
	// Default: the current directory.
	ModuleDir string

	// SkipBinarySize leaves out the binary-size row, which needs the go
	// command. Default: false.
	SkipBinarySize bool

	// Progress receives a line as each measurement starts. Default: discard.
	Progress io.Writer
}

func (o *RunOptions) withDefaults() RunOptions {
	var r RunOptions
	if o != nil {
		r = *o
	}
	if r.FirstTokenRuns <= 0 {
		r.FirstTokenRuns = 20
	}
	if r.CachedRepeats <= 0 {
		r.CachedRepeats = 3
	}
	if r.StormCallers <= 0 {
		r.StormCallers = 1000
	}
	if r.CLICalls <= 0 {
		r.CLICalls = 100
	}
	if r.CLILatency <= 0 {
		r.CLILatency = 20 * time.Millisecond
	}
	if r.LaptopAzLatency <= 0 {
		r.LaptopAzLatency = 300 * time.Millisecond
	}
	if r.Progress == nil {
		r.Progress = io.Discard
	}
	return r
}

// Row is one line of the side-by-side table.
type Row struct {
	// Measure says what was measured.
	Measure string
	// Azcred and Azidentity are each library's figure, formatted.
	Azcred, Azidentity string
	// Better names the library with the lower figure ("azcred" or
	// "azidentity", with the ratio), or says "same" or "within 10%".
	Better string
}

// Table is the side-by-side result of [Run].
type Table struct {
	Rows []Row
}

// Markdown renders t as a Markdown table.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| measure | azcred | azidentity | lower |\n|---|---:|---:|---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Measure, r.Azcred, r.Azidentity, r.Better)
	}
	return b.String()
}

// compare builds a row where the lower figure is better. tolerance is the
// relative difference under which timings count as equal (0 for counts).
func compare(measure string, a, b float64, tolerance float64, format func(float64) string) Row {
	r := Row{Measure: measure, Azcred: format(a), Azidentity: format(b)}
	lo, hi := math.Min(a, b), math.Max(a, b)
	switch {
	case a == b:
		r.Better = "same"
	case hi-lo <= tolerance*hi:
		r.Better = "within 10%"
	default:
		winner := Azcred
		if b < a {
			winner = Azidentity
		}
		if lo > 0 {
			r.Better = fmt.Sprintf("%s (%s×)", winner, ratio(hi/lo))
		} else {
			r.Better = string(winner)
		}
	}
	return r
}

func ratio(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func formatCount(x float64) string {
	if x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func formatDuration(x float64) string {
	d := time.Duration(x)
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%.0f ns", x)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1f µs", x/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", x/1e6)
	}
	return fmt.Sprintf("%.2f s", x/1e9)
}

func formatNsOp(x float64) string { return fmt.Sprintf("%.1f ns/op", x) }

func formatAllocs(x float64) string { return fmt.Sprintf("%.0f allocs/op", x) }

func formatMiB(x float64) string { return fmt.Sprintf("%.1f MiB", x/(1<<20)) }

const timingTolerance = 0.1

// Run runs every measurement for both libraries, one after another, and
// returns the table. With the defaults it takes well under a minute on two
// cores, most of it in the IMDS probe timeouts, the fake az's latency, the
// benchmarks' one second each and the two builds. It changes the
// process's environment while the developer-tool rows run.
func Run(ctx context.Context, options *RunOptions) (Table, error) {
	o := options.withDefaults()
	var t Table
	pair := func(name string, f func(Library) error) error {
		for _, lib := range Libraries {
			fmt.Fprintf(o.Progress, "%s: %s\n", name, lib)
			if err := f(lib); err != nil {
				return err
			}
		}
		return nil
	}

	var first [2]FirstTokenResult
	if err := pair("first token", func(lib Library) (err error) {
		first[index(lib)], err = FirstToken(ctx, lib, o.FirstTokenRuns)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare("First token, client secret: HTTP requests", first[0].Requests, first[1].Requests, 0, formatCount),
		compare(fmt.Sprintf("First token, client secret: latency (median of %d, loopback)", o.FirstTokenRuns),
			float64(first[0].Latency), float64(first[1].Latency), timingTolerance, formatDuration))

	var single [2]testing.BenchmarkResult // azcred's and azidentity's median single-goroutine runs
	for _, parallel := range []bool{false, true} {
		label := "1 goroutine"
		if parallel {
			label = fmt.Sprintf("parallel, GOMAXPROCS=%d", runtime.GOMAXPROCS(0))
		}
		var runs [2][]testing.BenchmarkResult
		for i := range o.CachedRepeats {
			if err := pair(fmt.Sprintf("cached GetToken, %s, run %d of %d", label, i+1, o.CachedRepeats), func(lib Library) error {
				r, err := CachedGetToken(ctx, lib, parallel)
				runs[index(lib)] = append(runs[index(lib)], r)
				return err
			}); err != nil {
				return t, err
			}
		}
		a, b := medianRun(runs[0]), medianRun(runs[1])
		if !parallel {
			single = [2]testing.BenchmarkResult{a, b}
		}
		repeats := ""
		if o.CachedRepeats > 1 {
			repeats = fmt.Sprintf(", median of %d", o.CachedRepeats)
		}
		t.Rows = append(t.Rows,
			compare("Cached GetToken ("+label+repeats+"): time", nsPerOp(a), nsPerOp(b), timingTolerance, formatNsOp),
			compare("Cached GetToken ("+label+"): allocations", float64(a.AllocsPerOp()), float64(b.AllocsPerOp()), 0, formatAllocs))
	}

	rows, err := dropInRows(ctx, o, first[1], single)
	if err != nil {
		return t, err
	}
	t.Rows = append(t.Rows, rows...)

	var storm [2]StormResult
	if err := pair("refresh storm", func(lib Library) (err error) {
		storm[index(lib)], err = Storm(ctx, lib, o.StormCallers)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare(fmt.Sprintf("Refresh storm (%d callers at expiry): HTTP requests", o.StormCallers), float64(storm[0].Requests), float64(storm[1].Requests), 0, formatCount),
		compare(fmt.Sprintf("Refresh storm (%d callers at expiry): worst caller's wait", o.StormCallers), float64(storm[0].Worst), float64(storm[1].Worst), timingTolerance, formatDuration))

	var cli [2]CLIResult
	if err := pair("az", func(lib Library) (err error) {
		cli[index(lib)], err = AzureCLI(ctx, lib, o.CLICalls, o.CLILatency)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare(fmt.Sprintf("AzureCLICredential, %d GetToken calls: az processes", o.CLICalls), float64(cli[0].Processes), float64(cli[1].Processes), 0, formatCount),
		compare(fmt.Sprintf("AzureCLICredential, %d GetToken calls: total time (fake az takes %s)", o.CLICalls, o.CLILatency), float64(cli[0].Elapsed), float64(cli[1].Elapsed), timingTolerance, formatDuration))

	var laptop [2]LaptopResult
	if err := pair("laptop", func(lib Library) (err error) {
		laptop[index(lib)], err = Laptop(ctx, lib, o.LaptopAzLatency)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare(fmt.Sprintf("DefaultAzureCredential on a laptop (IMDS blackholed, az takes %s): time to first token", o.LaptopAzLatency),
			float64(laptop[0].Elapsed), float64(laptop[1].Elapsed), timingTolerance, formatDuration))

	var vm [2]VMResult
	if err := pair("vm", func(lib Library) (err error) {
		vm[index(lib)], err = VM(ctx, lib, o.FirstTokenRuns)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare("DefaultAzureCredential on a VM: IMDS requests for the first token", vm[0].Requests, vm[1].Requests, 0, formatCount),
		compare(fmt.Sprintf("DefaultAzureCredential on a VM: time to first token (median of %d, loopback IMDS)", o.FirstTokenRuns),
			float64(vm[0].Latency), float64(vm[1].Latency), timingTolerance, formatDuration))

	// The developer's inner loop, in whole processes (see devloop.go).
	for _, firmware := range []bool{true, false} {
		machine := "a laptop whose firmware is not Microsoft's"
		if !firmware {
			machine = "a machine without firmware facts (no DMI)"
		}
		var loop [2]DevLoopResult
		if err := pair("second process, "+machine, func(lib Library) (err error) {
			loop[index(lib)], err = SecondProcess(ctx, lib, o.LaptopAzLatency, firmware)
			return err
		}); err != nil {
			return t, err
		}
		t.Rows = append(t.Rows,
			compare(fmt.Sprintf("DefaultAzureCredential, second process on %s (IMDS blackholed, az takes %s): time to first token", machine, o.LaptopAzLatency),
				float64(loop[0].Second), float64(loop[1].Second), timingTolerance, formatDuration),
			compare(fmt.Sprintf("DefaultAzureCredential, second process on %s: az runs", machine),
				float64(loop[0].SecondRuns), float64(loop[1].SecondRuns), 0, formatCount))
	}
	var off [2]OffAzureResult
	if err := pair("first process, firmware not Microsoft's", func(lib Library) (err error) {
		off[index(lib)], err = OffAzureFirstProcess(ctx, lib, o.LaptopAzLatency)
		return err
	}); err != nil {
		return t, err
	}
	t.Rows = append(t.Rows,
		compare(fmt.Sprintf("DefaultAzureCredential, first process on a laptop whose firmware is not Microsoft's (IMDS blackholed, az takes %s): time to first token", o.LaptopAzLatency),
			float64(off[0].Elapsed), float64(off[1].Elapsed), timingTolerance, formatDuration))

	if !o.SkipBinarySize {
		fmt.Fprintln(o.Progress, "binary size: both")
		sizes, err := BinarySizes(ctx, o.ModuleDir)
		if err != nil {
			return t, err
		}
		a, b := float64(sizes.Sizes[Azcred]), float64(sizes.Sizes[Azidentity])
		base := float64(sizes.Baseline)
		t.Rows = append(t.Rows,
			compare("Minimal DefaultAzureCredential program, stripped (-ldflags='-s -w')", a, b, 0, formatMiB),
			compare(fmt.Sprintf("… of which above a net/http + encoding/json program (%s)", formatMiB(base)), a-base, b-base, 0, formatMiB))
	}
	return t, nil
}

// medianRun is the run with the median time per operation.
func medianRun(runs []testing.BenchmarkResult) testing.BenchmarkResult {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(x, y testing.BenchmarkResult) int { return cmp.Compare(nsPerOp(x), nsPerOp(y)) })
	return s[len(s)/2]
}

// nsPerOp is r's time per operation with its fraction, which
// testing.BenchmarkResult.NsPerOp truncates.
func nsPerOp(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

func index(lib Library) int {
	if lib == Azidentity {
		return 1
	}
	return 0
}
