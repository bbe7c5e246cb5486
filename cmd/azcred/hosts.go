package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/jwtx"
	"github.com/azcred/azcred/internal/oauth"
)

// The second part of the demo: DefaultAzureCredential resolving on simulated
// hosts. Each host is a set of environment variables and a PATH holding only
// the demo's own fakes; the user's real variables and tools take no part, and
// every endpoint is the emulator's, on loopback.

const (
	fakeAzCommand = "__fake-az" // the hidden command the fake az runs
	fakeAzOutput  = "AZCRED_DEMO_AZ_OUTPUT"
	demoUser      = "dev@contoso.example"
	cliClientID   = "04b07795-8ddb-461a-bbee-02f9e1bf7b46" // the Azure CLI's public client
	wiClientID    = "00000000-0000-4000-8000-00000000a75e"
)

// simulatedHost is one machine the demo pretends to run on.
type simulatedHost struct {
	title string
	env   map[string]string // variables the host sets
	tools bool              // az is installed and signed in
	note  string
}

// demoHosts shows DefaultAzureCredential on each simulated host.
func demoHosts(ctx context.Context, w io.Writer, e *emulator.Emulator) error {
	restore := saveEnv()
	defer restore()

	closedIMDS, err := closedLoopbackURL()
	if err != nil {
		return err
	}
	hosts, cleanup, err := buildHosts(ctx, e, closedIMDS)
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDefaultAzureCredential on simulated hosts\n")
	fmt.Fprintf(w, "(each host: only its own variables, a PATH holding only the demo's fakes, endpoints on loopback;\n")
	fmt.Fprintf(w, " `azcred doctor` shows the same table on your machine, with why each source is unavailable)\n")
	for _, h := range hosts {
		if err := showHost(ctx, w, e, h); err != nil {
			return fmt.Errorf("%s: %w", h.title, err)
		}
	}
	return nil
}

func buildHosts(ctx context.Context, e *emulator.Emulator, closedIMDS string) ([]simulatedHost, func(), error) {
	dir, err := os.MkdirTemp("", "azcred-demo-")
	if err != nil {
		return nil, func() {}, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }

	// A service principal in CI: secret in environment variables.
	ci := simulatedHost{
		title: "CI job with a service principal",
		env: map[string]string{
			"AZURE_TENANT_ID": demoTenant, "AZURE_CLIENT_ID": demoClient, "AZURE_CLIENT_SECRET": demoSecret,
			"AZURE_AUTHORITY_HOST": e.URL(), "AZURE_POD_IDENTITY_AUTHORITY_HOST": closedIMDS,
		},
	}

	// An AKS pod with workload identity: a projected service-account token
	// that the app trusts through a federated credential.
	k8s, err := emulator.NewKubernetesIssuer(nil)
	if err != nil {
		return nil, cleanup, err
	}
	if err := e.RegisterApp(emulator.App{TenantID: demoTenant, ClientID: wiClientID, Roles: []string{"Demo.Read"},
		Federated: []emulator.FederatedCredential{k8s.FederatedCredential("shop", "checkout")}}); err != nil {
		return nil, cleanup, err
	}
	if err := os.Mkdir(filepath.Join(dir, "sa"), 0o700); err != nil {
		return nil, cleanup, err
	}
	projected := emulator.NewProjectedTokenFile(filepath.Join(dir, "sa"))
	sa, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: "shop", Name: "checkout"})
	if err != nil {
		return nil, cleanup, err
	}
	if err := projected.Write(sa); err != nil {
		return nil, cleanup, err
	}
	aks := simulatedHost{
		title: "AKS pod with workload identity",
		env: map[string]string{
			"AZURE_TENANT_ID": demoTenant, "AZURE_CLIENT_ID": wiClientID, "AZURE_FEDERATED_TOKEN_FILE": projected.Path(),
			"AZURE_AUTHORITY_HOST": e.URL(), "AZURE_POD_IDENTITY_AUTHORITY_HOST": closedIMDS,
		},
	}

	// An Azure VM with a system-assigned identity behind IMDS.
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{TenantID: demoTenant})
	imds, err := e.StartIMDS()
	if err != nil {
		return nil, cleanup, err
	}
	vm := simulatedHost{title: "Azure VM with a managed identity (IMDS)", env: imds.Env()}

	// A laptop where az is signed in: az is this program, re-executed.
	out, err := signedInAzOutput(ctx, e)
	if err != nil {
		return nil, cleanup, err
	}
	outFile := filepath.Join(dir, "az-output.json")
	if err := os.WriteFile(outFile, out, 0o600); err != nil {
		return nil, cleanup, err
	}
	laptop := simulatedHost{
		title: "developer laptop with az signed in",
		env:   map[string]string{fakeAzOutput: outFile, "AZURE_POD_IDENTITY_AUTHORITY_HOST": closedIMDS},
		tools: true,
	}
	if runtime.GOOS == "windows" {
		laptop.tools = false
		laptop.note = "(the fake az is a shell script: not shown on Windows)"
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		return nil, cleanup, err
	}
	if err := writeFakeAz(bin); err != nil {
		return nil, cleanup, err
	}
	for _, h := range []*simulatedHost{&ci, &aks, &vm, &laptop} {
		// The simulated hosts' fake tokens stay out of the user's
		// persistent cache.
		h.env[azcred.EnvDisableToolTokenCache] = "true"
		h.env["PATH"] = filepath.Join(dir, "empty")
		if h.tools {
			h.env["PATH"] = bin
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o700); err != nil {
		return nil, cleanup, err
	}
	return []simulatedHost{laptop, aks, vm, ci}, cleanup, nil
}

// showHost sets up the host's environment, asks every source (as `azcred
// doctor` does) and then gets a token with DefaultAzureCredential.
func showHost(ctx context.Context, w io.Writer, e *emulator.Emulator, h simulatedHost) error {
	clearIdentityEnv()
	for k, v := range h.env {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n== %s\n", strings.TrimSpace(h.title+" "+h.note))
	opts := &azcred.DefaultAzureCredentialOptions{ClientOptions: azcred.ClientOptions{Transport: e.Client()}}
	cred, err := azcred.NewDefaultAzureCredential(opts)
	if err != nil {
		return err
	}
	req := azcred.TokenRequestOptions{Scopes: []string{demoScope}}
	rows := doctorRows(cred.Diagnose(ctx, req))
	printDoctorTable(w, demoScope, rows, false)

	tok, err := cred.GetToken(ctx, req)
	if err != nil {
		return err
	}
	name, _ := cred.Resolved()
	var claims map[string]any
	_ = jwtx.DecodeClaims(tok.Token, &claims)
	fmt.Fprintf(w, "GetToken: %s gave a token for %s until %s\n", name, identityOf(claims), tok.ExpiresOn.Format(time.RFC3339))
	return nil
}

func identityOf(claims map[string]any) string {
	var parts []string
	for _, k := range []string{"upn", "appid", "oid", "tid"} {
		if v, ok := claims[k].(string); ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// signedInAzOutput is what `az account get-access-token` prints for a user
// signed in to the emulator.
func signedInAzOutput(ctx context.Context, e *emulator.Emulator) ([]byte, error) {
	if err := e.RegisterApp(emulator.App{TenantID: demoTenant, ClientID: cliClientID, PublicClient: true}); err != nil {
		return nil, err
	}
	if err := e.AddUser(emulator.User{TenantID: demoTenant, Username: demoUser, Password: "demo-password", Name: "Demo Developer"}); err != nil {
		return nil, err
	}
	endpoint, err := oauth.TokenEndpoint(e.URL(), demoTenant, "")
	if err != nil {
		return nil, err
	}
	client := oauth.NewClient(oauth.Options{HTTP: httpx.New(httpx.Options{Transport: e.Client()})})
	tok, err := client.Password(ctx, oauth.PasswordParams{
		Params:   oauth.Params{Endpoint: endpoint, ClientID: cliClientID, Scopes: []string{"https://management.azure.com/user_impersonation"}},
		Username: demoUser, Password: "demo-password",
	})
	if err != nil {
		return nil, fmt.Errorf("signing the demo user in: %w", err)
	}
	return json.Marshal(map[string]any{
		"accessToken": tok.AccessToken, "expires_on": tok.ExpiresOn.Unix(), "tenant": demoTenant, "tokenType": "Bearer",
		"expiresOn": tok.ExpiresOn.Local().Format("2006-01-02 15:04:05.000000"),
	})
}

// writeFakeAz puts an az into bin that runs this program's hidden fake-az
// command.
func writeFakeAz(bin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' %s \"$@\"\n", strings.ReplaceAll(self, "'", `'\''`), fakeAzCommand)
	return os.WriteFile(filepath.Join(bin, "az"), []byte(script), 0o700)
}

// fakeAz answers `az account get-access-token` with the signed-in user's
// token, as the real az does from its own cache.
func fakeAz(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "account" || args[1] != "get-access-token" {
		fmt.Fprintf(stderr, "ERROR: the demo's az only answers 'az account get-access-token' (got %q)\n", args)
		return 2
	}
	out, err := os.ReadFile(os.Getenv(fakeAzOutput))
	if err != nil {
		fmt.Fprintln(stderr, "ERROR: Please run 'az login' to setup account.")
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

// closedLoopbackURL returns an http URL of a loopback port nothing listens
// on: managed identity on hosts without IMDS is told to look there, so the
// demo never reaches for the real 169.254.169.254.
func closedLoopbackURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return "http://" + addr, nil
}

// identityPrefixes are the variables a host may set that the chain reads.
var identityPrefixes = []string{"AZURE_", "IDENTITY_", "MSI_", "IMDS_", "SYSTEM_OIDC", "DEFAULT_IDENTITY_CLIENT_ID"}

func clearIdentityEnv() {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range identityPrefixes {
			if strings.HasPrefix(k, p) {
				_ = os.Unsetenv(k)
			}
		}
	}
}

// saveEnv records the environment and returns a function that restores it.
func saveEnv() func() {
	saved := os.Environ()
	return func() {
		os.Clearenv()
		for _, kv := range saved {
			if k, v, ok := strings.Cut(kv, "="); ok {
				_ = os.Setenv(k, v)
			}
		}
	}
}
