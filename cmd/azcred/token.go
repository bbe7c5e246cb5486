package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/azcred/azcred"
)

// defaultScope is what token and doctor ask for when no --scope is given.
const defaultScope = "https://management.azure.com/.default"

// sourceNames are the sources of the default chain that --source accepts.
var sourceNames = []string{
	"EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential",
	"AzureCLICredential", "AzurePowerShellCredential", "AzureDeveloperCLICredential",
	"InteractiveBrowserCredential",
}

// tokenOutput is what `azcred token` prints, shaped like
// `az account get-access-token`.
type tokenOutput struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	TokenType   string `json:"tokenType"`
	Source      string `json:"source"`
}

// tokenCommand gets a token with the default chain and prints it.
func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("azcred token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scope := fs.String("scope", defaultScope, "the scope to get a token for")
	tenant := fs.String("tenant", "", "the tenant to get the token from (default: the source's own)")
	source := fs.String("source", "", "use only this source of the default chain: "+strings.Join(sourceNames, ", "))
	output := fs.String("output", "json", "json, or raw for the bare token (for curl -H \"Authorization: Bearer $(azcred token --output raw)\")")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *output != "json" && *output != "raw" {
		return usageError{fmt.Errorf("--output must be json or raw, not %q", *output)}
	}
	opts, err := chainOptions(*source)
	if err != nil {
		return usageError{err}
	}
	cred, err := azcred.NewDefaultAzureCredential(opts)
	if err != nil {
		return err
	}
	tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{*scope}, TenantID: *tenant})
	if err != nil {
		return err
	}
	if *output == "raw" {
		_, err := fmt.Fprintln(stdout, tok.Token)
		return err
	}
	name, _ := cred.Resolved()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(tokenOutput{
		AccessToken: tok.Token,
		ExpiresOn:   tok.ExpiresOn.Format(time.RFC3339),
		ExpiresOnTS: tok.ExpiresOn.Unix(),
		TokenType:   "Bearer",
		Source:      name,
	})
}

// chainOptions returns the default chain's options, narrowed to one source
// when source is set.
func chainOptions(source string) (*azcred.DefaultAzureCredentialOptions, error) {
	o := &azcred.DefaultAzureCredentialOptions{}
	if source == "" {
		return o, nil
	}
	i := slices.IndexFunc(sourceNames, func(n string) bool { return strings.EqualFold(n, source) })
	if i < 0 {
		return nil, fmt.Errorf("--source %q is not a source of the default chain; use one of %s", source, strings.Join(sourceNames, ", "))
	}
	name := sourceNames[i]
	o.ExcludeEnvironmentCredential = name != "EnvironmentCredential"
	o.ExcludeWorkloadIdentityCredential = name != "WorkloadIdentityCredential"
	o.ExcludeManagedIdentityCredential = name != "ManagedIdentityCredential"
	o.ExcludeAzureCLICredential = name != "AzureCLICredential"
	o.ExcludeAzurePowerShellCredential = name != "AzurePowerShellCredential"
	o.ExcludeAzureDeveloperCLICredential = name != "AzureDeveloperCLICredential"
	o.EnableInteractiveBrowserCredential = name == "InteractiveBrowserCredential"
	return o, nil
}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
