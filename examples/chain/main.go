// Command chain builds its own chain of credentials: managed identity in
// production, then the Azure CLI on a developer's machine — and nothing else,
// unlike DefaultAzureCredential.
//
//	go run ./examples/chain
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/azcred/azcred"
)

func main() {
	mi, err := azcred.NewManagedIdentityCredential(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cli, err := azcred.NewAzureCLICredential(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	chain, err := azcred.NewChainedTokenCredential([]azcred.TokenCredential{mi, cli}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := chain.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err != nil {
		fmt.Fprintln(os.Stderr, err) // every attempt, and what to do
		os.Exit(1)
	}
	source, _ := chain.Resolved()
	fmt.Println("token from", source)
}
