// Command defaultcredential gets a token with DefaultAzureCredential and says
// which source gave it and for which identity, never printing the token.
//
//	go run ./examples/defaultcredential [scope]
//
// On a laptop it finds your `az login`; on Azure, the managed identity; in
// CI, the service principal in AZURE_* variables. Run `azcred doctor` when
// it finds nothing.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/azcred/azcred"
)

func main() {
	scope := "https://management.azure.com/.default"
	if len(os.Args) > 1 {
		scope = os.Args[1]
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cred, err := azcred.NewDefaultAzureCredential(&azcred.DefaultAzureCredentialOptions{
		ClientOptions: azcred.ClientOptions{Logger: logger}, // an Info record names the source and identity
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		var chainErr *azcred.ChainError
		if errors.As(err, &chainErr) {
			for _, a := range chainErr.Attempts() {
				fmt.Fprintf(os.Stderr, "%-28s %s\n", a.Source, a.Outcome)
			}
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	source, _ := cred.Resolved()
	fmt.Printf("%s gave a token for %s, valid until %s\n", source, scope, tok.ExpiresOn.Format(time.RFC3339))
}
