// Command quickstart gets a token from DefaultAzureCredential and lists the
// Azure subscriptions it can see.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/azcred/azcred"
)

func main() {
	ctx := context.Background()
	cred, err := azcred.NewDefaultAzureCredential(nil)
	if err != nil {
		log.Fatal(err) // only for contradictory options or a bad AZURE_TOKEN_CREDENTIALS
	}
	tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{
		Scopes: []string{"https://management.azure.com/.default"},
	})
	if err != nil {
		log.Fatal(err) // names every source tried, and what to do
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"https://management.azure.com/subscriptions?api-version=2022-12-01", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	source, _ := cred.Resolved()
	fmt.Printf("Azure Resource Manager answered %s to the identity from %s\n", resp.Status, source)
}
