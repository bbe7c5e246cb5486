// Command azcred is the smallest useful DefaultAzureCredential program with
// azcred: it gets an Azure Resource Manager token and prints when it
// expires. The benchmarks build it, stripped, to compare binary sizes with
// its azidentity twin in ../azidentity; they never run it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/azcred/azcred"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := azcred.NewDefaultAzureCredential(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok, err := cred.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("token expires", tok.ExpiresOn.Format(time.RFC3339))
}
