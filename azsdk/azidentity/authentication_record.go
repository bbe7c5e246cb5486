package azidentity

import "github.com/azcred/azcred"

// AuthenticationRecord names a signed-in account without holding any
// secret: an interactive credential's Authenticate returns it, and a later
// credential given it (with a persistent Cache) gets that account's tokens
// silently. It is safe to store as JSON.
type AuthenticationRecord struct {
	// Authority is the authority host the account signed in at.
	Authority string `json:"authority"`

	// ClientID is the application the account signed in to.
	ClientID string `json:"clientId"`

	// HomeAccountID identifies the account ("<object ID>.<home tenant>").
	HomeAccountID string `json:"homeAccountId"`

	// TenantID is the tenant the account signed in to.
	TenantID string `json:"tenantId"`

	// Username is the account's sign-in name.
	Username string `json:"username"`

	// Version is the record's format version, "1.0".
	Version string `json:"version"`
}

// UnmarshalJSON reads a record and refuses one whose version is missing or
// not "1.0".
func (a *AuthenticationRecord) UnmarshalJSON(b []byte) error {
	var r azcred.AuthenticationRecord
	if err := r.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = AuthenticationRecord(r)
	return nil
}

// DeviceCodeMessage is what a device-code sign-in shows the user.
type DeviceCodeMessage struct {
	// UserCode is the code the user enters.
	UserCode string `json:"user_code"`

	// VerificationURL is the page where the user enters the code.
	VerificationURL string `json:"verification_uri"`

	// Message is Entra ID's instruction to the user, naming both.
	Message string `json:"message"`
}
