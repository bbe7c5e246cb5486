package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/azcred/azcred/internal/azurevm"
)

// The developer's inner loop: a program started again and again on the
// same laptop. Each measurement runs whole processes — this program started
// again as a child, which [ChildMain] turns into one DefaultAzureCredential
// that gets one token and reports how long that took — so that nothing a
// process keeps in memory is carried over; what carries over is only what
// a library keeps on disk.

// childEnv carries a child's instructions, as JSON.
const childEnv = "AZCRED_BENCH_CHILD"

// childSpec is what a child does.
type childSpec struct {
	Lib Library `json:"lib"`
	// DMIRoot, when set, is the folder azcred reads the firmware from
	// instead of /sys/class/dmi/id: the simulated machine's firmware.
	DMIRoot string `json:"dmiRoot,omitempty"`
}

// childResult is what a child prints on its last line.
type childResult struct {
	ElapsedNs int64 `json:"elapsedNs"`
	// Blackholed is how many connections the child tried to open to
	// anything but loopback (the IMDS probe's).
	Blackholed int    `json:"blackholed"`
	Err        string `json:"err,omitempty"`
}

// ChildMain returns at once unless this program was started as a child by
// [SecondProcess] or [OffAzureFirstProcess]; then it makes the one
// measurement asked for, prints the result and exits. Programs that call
// those functions (cmd/sidebyside, and this package's tests) call
// ChildMain first thing in main or TestMain.
func ChildMain() {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var spec childSpec
	var res childResult
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		res.Err = "bad child spec: " + err.Error()
	} else {
		if spec.DMIRoot != "" {
			azurevm.DMIRoot = spec.DMIRoot
		}
		elapsed, err := laptopToken(context.Background(), spec.Lib)
		res.ElapsedNs, res.Blackholed = elapsed.Nanoseconds(), laptopNet.dials()
		if err != nil {
			res.Err = err.Error()
		}
	}
	b, _ := json.Marshal(res)
	fmt.Printf("\n%s\n", b)
	if res.Err != "" {
		os.Exit(1)
	}
	os.Exit(0)
}

// laptopHome is a simulated laptop's user: a home folder in which az is
// signed in (its profile file), the fake az on PATH, and the environment a
// child runs with.
type laptopHome struct {
	az   *fakeAz
	home string
}

func newLaptopHome(azLatency time.Duration) (*laptopHome, error) {
	az, err := newFakeAz(azLatency)
	if err != nil {
		return nil, err
	}
	h := &laptopHome{az: az, home: filepath.Join(az.dir, "home")}
	azDir := filepath.Join(h.home, ".azure")
	if err := os.MkdirAll(azDir, 0o700); err != nil {
		return nil, errors.Join(err, az.remove())
	}
	profile := fmt.Sprintf(`{"installationId":"bench","subscriptions":[{"id":"0f1e2d3c-4b5a-4968-8776-655443322110","isDefault":true,"tenantId":%q,"user":{"name":"dev@contoso.com","type":"user"},"state":"Enabled"}]}`, benchTenant)
	if err := os.WriteFile(filepath.Join(azDir, "azureProfile.json"), []byte(profile), 0o600); err != nil {
		return nil, errors.Join(err, az.remove())
	}
	return h, nil
}

func (h *laptopHome) remove() error { return h.az.remove() }

// env is the child's environment: the parent's without any variable that
// points either library elsewhere, PATH holding only the fake az, and the
// laptop's own home and cache folders.
func (h *laptopHome) env(spec childSpec) ([]string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := k == "PATH" || k == "HOME" || k == "XDG_CACHE_HOME" || strings.HasPrefix(k, "AZCRED_")
		for _, p := range credentialEnvPrefixes {
			drop = drop || strings.HasPrefix(strings.ToUpper(k), p)
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+h.az.dir, "HOME="+h.home, "XDG_CACHE_HOME="+filepath.Join(h.home, ".cache"), childEnv+"="+string(b)), nil
}

// process runs one child and returns its time to first token, how many
// times az ran during it and how many connections it tried to open to
// anything but loopback.
func (h *laptopHome) process(ctx context.Context, spec childSpec) (time.Duration, int, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, 0, err
	}
	env, err := h.env(spec)
	if err != nil {
		return 0, 0, 0, err
	}
	before, err := h.az.runs()
	if err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res childResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return 0, 0, 0, fmt.Errorf("benchmarks: the %s child printed no result (%v): %s", spec.Lib, runErr, strings.TrimSpace(stderr.String()+stdout.String()))
	}
	if res.Err != "" {
		return 0, 0, 0, fmt.Errorf("benchmarks: the %s child: %s", spec.Lib, res.Err)
	}
	after, err := h.az.runs()
	return time.Duration(res.ElapsedNs), after - before, res.Blackholed, err
}

// DevLoopResult is what [SecondProcess] saw.
type DevLoopResult struct {
	// First and Second are each process's time from constructing
	// DefaultAzureCredential to its first token.
	First, Second time.Duration
	// FirstRuns and SecondRuns are how many times az ran in each.
	FirstRuns, SecondRuns int
	// SecondBlackholed is how many connections the second process tried to
	// open to anything but loopback.
	SecondBlackholed int
}

// SecondProcess runs two processes of the same user one after the other on
// a simulated laptop (IMDS blackholed, az signed in and taking azLatency),
// each getting its first token with lib's DefaultAzureCredential. With
// laptopFirmware the machine's firmware names a manufacturer other than
// Microsoft, as a laptop's does; without, azcred finds no firmware facts
// (as in a container, or on a machine whose DMI is unreadable) and probes
// IMDS in both.
func SecondProcess(ctx context.Context, lib Library, azLatency time.Duration, laptopFirmware bool) (DevLoopResult, error) {
	if err := lib.check(); err != nil {
		return DevLoopResult{}, err
	}
	h, err := newLaptopHome(azLatency)
	if err != nil {
		return DevLoopResult{}, err
	}
	defer h.remove()
	spec := childSpec{Lib: lib, DMIRoot: filepath.Join(h.az.dir, "no-dmi")}
	if laptopFirmware {
		if spec.DMIRoot, err = h.laptopFirmware(); err != nil {
			return DevLoopResult{}, err
		}
	}
	var r DevLoopResult
	if r.First, r.FirstRuns, _, err = h.process(ctx, spec); err != nil {
		return r, err
	}
	r.Second, r.SecondRuns, r.SecondBlackholed, err = h.process(ctx, spec)
	return r, err
}

// laptopFirmware writes a laptop's DMI attributes and returns their folder.
func (h *laptopHome) laptopFirmware() (string, error) {
	dmi := filepath.Join(h.az.dir, "dmi")
	if err := os.Mkdir(dmi, 0o700); err != nil {
		return "", err
	}
	for name, v := range map[string]string{"sys_vendor": "LENOVO", "chassis_asset_tag": "No Asset Information"} {
		if err := os.WriteFile(filepath.Join(dmi, name), []byte(v+"\n"), 0o444); err != nil {
			return "", err
		}
	}
	return dmi, nil
}

// OffAzureResult is what [OffAzureFirstProcess] saw.
type OffAzureResult struct {
	// Elapsed is the time from constructing DefaultAzureCredential to its
	// first token.
	Elapsed time.Duration
	// Runs is how many times az ran.
	Runs int
	// Blackholed is how many connections the process tried to open to
	// anything but loopback (IMDS).
	Blackholed int
}

// OffAzureFirstProcess runs the first process on a simulated laptop whose
// firmware names a manufacturer other than Microsoft ("LENOVO"), with IMDS
// blackholed and az signed in, taking azLatency.
func OffAzureFirstProcess(ctx context.Context, lib Library, azLatency time.Duration) (OffAzureResult, error) {
	if err := lib.check(); err != nil {
		return OffAzureResult{}, err
	}
	h, err := newLaptopHome(azLatency)
	if err != nil {
		return OffAzureResult{}, err
	}
	defer h.remove()
	dmi, err := h.laptopFirmware()
	if err != nil {
		return OffAzureResult{}, err
	}
	var r OffAzureResult
	r.Elapsed, r.Runs, r.Blackholed, err = h.process(ctx, childSpec{Lib: lib, DMIRoot: dmi})
	return r, err
}
