package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azcred/azcred/azcredtest/emulator"
)

// tokenRotation is how often the projected service-account tokens of the
// workload-identity apps are renewed (they live an hour, as a kubelet's do).
const tokenRotation = 10 * time.Minute

// noProxy lists the destinations that stay direct: the managed-identity
// endpoints and the emulator itself are on loopback.
const noProxy = "127.0.0.1,localhost,::1"

// emulatorCommand runs the emulator stand-alone until ctx ends (SIGINT or
// SIGTERM), for integration tests in any language.
func emulatorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("azcred emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "the loopback address of the Entra ID endpoint (https)")
	state := fs.String("state", "", "a folder for the files other programs need (ca.pem, env.sh, hosts/*.sh, certs/); default: a new temporary folder")
	tenant := fs.String("tenant", demoTenant, "the default tenant's ID (not with -tenant-file)")
	client := fs.String("client-id", demoClient, "the default secret app's client ID (not with -tenant-file)")
	secret := fs.String("client-secret", demoSecret, "the default secret app's client secret, a test value (not with -tenant-file)")
	tenantFile := fs.String("tenant-file", "", "a JSON tenant description that replaces the default tenant (the format: DIR/tenant.json of a default run)")
	lifetime := fs.Duration("token-lifetime", emulator.DefaultTokenLifetime, "the lifetime of issued access tokens")
	refreshIn := fs.Duration("refresh-in", 0, "send refresh_in with every token (0: not sent)")
	faultRate := fs.String("fault-rate", "0", "the share of token requests (Entra ID and managed identity) that get -fault-kind, as 0.1 or 10%")
	faultKind := fs.String("fault-kind", "429", "the injected fault: 429 (with Retry-After: 1), 500, 503, drop (close the connection), slow (answer after 2 s), malformed (JSON that does not parse)")
	useProxy := fs.Bool("proxy", true, "answer login.microsoftonline.com and the sovereign clouds' hosts through an HTTPS CONNECT proxy on loopback, and point the hosts files at it")
	arcKeyDir := fs.String("arc-key-dir", defaultArcKeyDir(), "the folder the Azure Arc agent writes its key files into; clients accept only the agent's own folder (\"\": no Arc)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	spec := defaultTenantSpec(*tenant, *client, *secret)
	if *tenantFile != "" {
		var clash []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "tenant" || f.Name == "client-id" || f.Name == "client-secret" {
				clash = append(clash, "-"+f.Name)
			}
		})
		if len(clash) > 0 {
			return usageError{fmt.Errorf("%s change the default tenant; with -tenant-file, put them in the file", strings.Join(clash, ", "))}
		}
		var err error
		if spec, err = readTenantSpec(*tenantFile); err != nil {
			return err
		}
	}
	rate, err := parseRate(*faultRate)
	if err != nil {
		return usageError{err}
	}
	fault, miFault, err := parseFaultKind(*faultKind)
	if err != nil {
		return usageError{err}
	}
	dir := *state
	if dir == "" {
		if dir, err = os.MkdirTemp("", "azcred-emulator-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the state folder: %w", err)
	}

	e, err := emulator.New(&emulator.Options{Addr: *addr, TokenLifetime: *lifetime, RefreshIn: *refreshIn})
	if err != nil {
		return err
	}
	defer e.Close()
	p, err := provision(e, spec, dir, *arcKeyDir)
	if err != nil {
		return err
	}
	var proxy *emulator.Proxy
	if *useProxy {
		if proxy, err = e.StartProxy(); err != nil {
			return err
		}
	}
	if rate > 0 {
		fault.Path = "/oauth2/v2.0/token"
		if err := e.SetRandomFaults(emulator.RandomFault{Rate: rate, Fault: fault}); err != nil {
			return err
		}
		for _, h := range e.Hosts() {
			if err := h.SetRandomFaults(emulator.RandomMIFault{Rate: rate, Fault: miFault}); err != nil {
				return err
			}
		}
	}

	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, e.CertPEM(), 0o600); err != nil {
		return fmt.Errorf("writing the CA certificate: %w", err)
	}
	common := map[string]string{
		"SSL_CERT_FILE":       caFile, // Go, OpenSSL, Python's ssl
		"REQUESTS_CA_BUNDLE":  caFile, // Python requests, the Azure CLI
		"NODE_EXTRA_CA_CERTS": caFile, // Node.js
		"CURL_CA_BUNDLE":      caFile, // curl
	}
	if proxy != nil {
		for _, k := range []string{"HTTPS_PROXY", "https_proxy"} {
			common[k] = proxy.URL()
		}
		for _, k := range []string{"NO_PROXY", "no_proxy"} {
			common[k] = noProxy
		}
	}
	hostsDir := filepath.Join(dir, "hosts")
	if err := os.MkdirAll(hostsDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", hostsDir, err)
	}
	for _, hf := range p.files {
		vars := maps.Clone(common)
		maps.Copy(vars, hf.vars)
		if proxy == nil {
			if _, ok := vars["AZURE_CLIENT_ID"]; ok {
				vars["AZURE_AUTHORITY_HOST"] = e.URL()
			}
		}
		if err := writeHostFiles(hostsDir, hf, vars); err != nil {
			return err
		}
	}

	// env.sh: the secret app with the emulator as authority host, and the
	// IMDS; managed identity finds the user-assigned identity that has the
	// app's client ID.
	direct := maps.Clone(common)
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"} {
		delete(direct, k)
	}
	direct["AZURE_AUTHORITY_HOST"] = e.URL()
	for _, hf := range p.files {
		if _, ok := hf.vars["AZURE_CLIENT_SECRET"]; ok && direct["AZURE_CLIENT_ID"] == "" {
			maps.Copy(direct, hf.vars)
		}
		if hf.name == "imds" {
			maps.Copy(direct, hf.vars)
		}
	}
	env := shellFile(direct)
	envFile := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", envFile, err)
	}
	desc, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tenant.json"), append(desc, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing tenant.json: %w", err)
	}
	p.keepRotating(ctx, tokenRotation, func(err error) { fmt.Fprintf(stderr, "renewing a projected token: %v\n", err) })
	defer p.wg.Wait()

	fmt.Fprintf(stdout, "Entra ID emulator at %s (loopback only)\n", e.URL())
	if proxy != nil {
		fmt.Fprintf(stdout, "HTTPS proxy at %s answers %s itself and refuses every other destination.\n", proxy.URL(), strings.Join(emulator.AuthorityHosts()[:3], ", ")+" and the sovereign clouds' hosts")
	}
	fmt.Fprintf(stdout, "Tenant %s: %d apps, %d users, managed identities on %d hosts (described in %s).\n", spec.TenantID, len(spec.Apps), len(spec.Users), len(e.Hosts()), filepath.Join(dir, "tenant.json"))
	if rate > 0 {
		fmt.Fprintf(stdout, "Injecting %s into %g%% of token requests.\n", *faultKind, rate*100)
	}
	fmt.Fprintf(stdout, "\nOne self-contained environment per host (source one; a dotenv form .env sits beside each):\n")
	for _, hf := range p.files {
		fmt.Fprintf(stdout, "  %-40s %s\n", filepath.Join(hostsDir, hf.name+".sh"), hf.title)
	}
	for _, n := range p.notes {
		fmt.Fprintf(stdout, "  %s\n", n)
	}
	fmt.Fprintf(stdout, "\nDirect environment, the authority host at the emulator (azcred; MSAL-based clients then need instance discovery disabled), also in %s:\n\n%s\n", envFile, env)
	fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping.")
	return nil
}

// writeHostFiles writes hosts/<name>.sh and hosts/<name>.env.
func writeHostFiles(dir string, hf hostFile, vars map[string]string) error {
	head := fmt.Sprintf("# azcred emulator: %s. Source this file alone; it holds everything a program needs.\n", hf.title)
	if err := os.WriteFile(filepath.Join(dir, hf.name+".sh"), []byte(head+shellFile(vars)), 0o600); err != nil {
		return fmt.Errorf("writing hosts/%s.sh: %w", hf.name, err)
	}
	var b strings.Builder
	b.WriteString(head)
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&b, "%s=%s\n", k, dotenvQuote(vars[k]))
	}
	if err := os.WriteFile(filepath.Join(dir, hf.name+".env"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing hosts/%s.env: %w", hf.name, err)
	}
	return nil
}

// shellFile renders vars as sorted POSIX shell exports.
func shellFile(vars map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(vars[k]))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dotenvQuote quotes a dotenv value when it needs it.
func dotenvQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t#\"'\\$`=\n") {
		return s
	}
	return strconv.Quote(s)
}

// parseRate reads a share such as "0.1" or "10%".
func parseRate(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err == nil && pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 {
		return 0, fmt.Errorf("-fault-rate %q: give a share between 0 and 1, or a percentage such as 10%%", s)
	}
	return v, nil
}

// parseFaultKind maps a -fault-kind to the emulator's Entra ID and
// managed-identity faults.
func parseFaultKind(kind string) (emulator.Fault, emulator.MIFault, error) {
	throttled := []byte(`{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server is throttling this client (injected by the azcred emulator)."}`)
	failed := []byte(`{"error":"server_error","error_description":"AADSTS50000: There was an error issuing a token (injected by the azcred emulator)."}`)
	switch kind {
	case "429":
		h := http.Header{"Retry-After": {"1"}}
		return emulator.Fault{Status: 429, Header: h, Body: throttled}, emulator.MIFault{Status: 429, Header: h, Body: throttled}, nil
	case "500", "503":
		code, _ := strconv.Atoi(kind)
		return emulator.Fault{Status: code, Body: failed}, emulator.MIFault{Status: code, Body: failed}, nil
	case "drop":
		return emulator.Fault{Drop: true}, emulator.MIFault{Drop: true}, nil
	case "slow":
		return emulator.Fault{Delay: 2 * time.Second}, emulator.MIFault{Delay: 2 * time.Second}, nil
	case "malformed":
		return emulator.Fault{Malformed: true}, emulator.MIFault{NonJSON: true}, nil
	}
	return emulator.Fault{}, emulator.MIFault{}, errors.New("-fault-kind " + strconv.Quote(kind) + ": use 429, 500, 503, drop, slow or malformed")
}
