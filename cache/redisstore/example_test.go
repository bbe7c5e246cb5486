package redisstore_test

import (
	"context"
	"encoding/base64"
	"log"
	"os"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/cache/redisstore"
)

// Every process of the fleet builds the same store and gives it to its
// credential; the key comes from the fleet's secret store (here, an
// environment variable set from a Kubernetes secret).
func ExampleNew() {
	key, err := base64.StdEncoding.DecodeString(os.Getenv("TOKEN_CACHE_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := redisstore.New(redisstore.Options{Addr: "redis.internal:6379", KeyPrefix: "orders-api:", EncryptionKey: key})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	cred, err := azcred.NewClientSecretCredential(os.Getenv("AZURE_TENANT_ID"), os.Getenv("AZURE_CLIENT_ID"), os.Getenv("AZURE_CLIENT_SECRET"),
		&azcred.ClientSecretCredentialOptions{Cache: store})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		log.Fatal(err)
	}
	_ = tok
}
