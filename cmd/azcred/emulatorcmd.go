package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/azcred/azcred/azcredtest/emulator"
)

// emulatorCommand runs the emulator stand-alone until ctx ends (SIGINT or
// SIGTERM), for integration tests in any language.
func emulatorCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("azcred emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "the loopback address of the Entra ID endpoint (https)")
	state := fs.String("state", "", "a folder for the files other programs need (ca.pem, env.sh); default: a new temporary folder")
	tenant := fs.String("tenant", demoTenant, "the tenant to create")
	client := fs.String("client-id", demoClient, "the app registration to create")
	secret := fs.String("client-secret", demoSecret, "the app's client secret (a test value; the emulator holds no real secret)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	dir := *state
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "azcred-emulator-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the state folder: %w", err)
	}

	e, err := emulator.New(&emulator.Options{Addr: *addr})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.RegisterApp(emulator.App{TenantID: *tenant, ClientID: *client, Secrets: []string{*secret}}); err != nil {
		return err
	}
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{TenantID: *tenant})
	imds, err := e.StartIMDS()
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, e.CertPEM(), 0o600); err != nil {
		return fmt.Errorf("writing the CA certificate: %w", err)
	}
	vars := map[string]string{
		"AZURE_AUTHORITY_HOST":              e.URL(),
		"AZURE_TENANT_ID":                   *tenant,
		"AZURE_CLIENT_ID":                   *client,
		"AZURE_CLIENT_SECRET":               *secret,
		"AZURE_POD_IDENTITY_AUTHORITY_HOST": imds.URL(),
		"SSL_CERT_FILE":                     caFile, // Go, OpenSSL
		"REQUESTS_CA_BUNDLE":                caFile, // Python requests
		"NODE_EXTRA_CA_CERTS":               caFile, // Node.js
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(vars[k]))
	}
	envFile := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(envFile, []byte(env.String()), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", envFile, err)
	}
	fmt.Fprintf(stdout, "Entra ID emulator at %s, IMDS at %s (loopback only)\n", e.URL(), imds.URL())
	fmt.Fprintf(stdout, "App %s in tenant %s, with a system-assigned managed identity on IMDS.\n", *client, *tenant)
	fmt.Fprintf(stdout, "MSAL-based SDKs (azidentity, azure-identity) need instance discovery disabled to use it.\n")
	fmt.Fprintf(stdout, "Environment for other programs (also in %s):\n\n%s\n", envFile, env.String())
	fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping.")
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
