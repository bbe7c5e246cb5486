// Command gettoken gets a token with azidentity or azcred for each
// credential named, configured only by the environment, and prints each
// outcome as one line of JSON for the interop tests.
//
//	gettoken <credential>...
//
// The scope is ARM's, or AZCRED_INTEROP_SCOPE.
//
// credential: client-secret, client-certificate, environment,
// workload-identity, managed-identity, default (azidentity), or
// azcred-default (azcred's DefaultAzureCredential).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azcred/azcred"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gettoken <credential>...")
		os.Exit(2)
	}
	scope := "https://management.azure.com/.default"
	if s := os.Getenv("AZCRED_INTEROP_SCOPE"); s != "" {
		scope = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := 0
	enc := json.NewEncoder(os.Stdout)
	for _, kind := range os.Args[1:] {
		token, err := getToken(ctx, kind, scope)
		out := map[string]any{"credential": kind, "token": token}
		if err != nil {
			out = map[string]any{"credential": kind, "error": err.Error()}
			code = 1
		}
		_ = enc.Encode(out)
	}
	os.Exit(code)
}

func getToken(ctx context.Context, kind, scope string) (string, error) {
	if kind == "azcred-default" {
		cred, err := azcred.NewDefaultAzureCredential(nil)
		if err != nil {
			return "", err
		}
		tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{scope}})
		return tok.Token, err
	}
	cred, err := azidentityCredential(kind)
	if err != nil {
		return "", err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	return tok.Token, err
}

func azidentityCredential(kind string) (azcore.TokenCredential, error) {
	env := os.Getenv
	switch kind {
	case "client-secret":
		return azidentity.NewClientSecretCredential(env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), env("AZURE_CLIENT_SECRET"), nil)
	case "client-certificate":
		data, err := os.ReadFile(env("AZURE_CLIENT_CERTIFICATE_PATH"))
		if err != nil {
			return nil, err
		}
		certs, key, err := azidentity.ParseCertificates(data, []byte(env("AZURE_CLIENT_CERTIFICATE_PASSWORD")))
		if err != nil {
			return nil, err
		}
		return azidentity.NewClientCertificateCredential(env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), certs, key, nil)
	case "environment":
		return azidentity.NewEnvironmentCredential(nil)
	case "workload-identity":
		return azidentity.NewWorkloadIdentityCredential(nil)
	case "managed-identity":
		var o azidentity.ManagedIdentityCredentialOptions
		if id := env("AZURE_CLIENT_ID"); id != "" {
			o.ID = azidentity.ClientID(id)
		}
		return azidentity.NewManagedIdentityCredential(&o)
	case "default":
		return azidentity.NewDefaultAzureCredential(nil)
	}
	return nil, fmt.Errorf("unknown credential %q", kind)
}
