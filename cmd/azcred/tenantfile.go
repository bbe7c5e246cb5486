package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/azcred/azcred/azcredtest/emulator"
)

// tenantSpec is the JSON tenant description `azcred emulator --tenant-file`
// reads; without one, defaultTenantSpec is provisioned.
type tenantSpec struct {
	// TenantID is the tenant every app, user and identity belongs to.
	TenantID string `json:"tenantId"`
	// Apps are the app registrations; each gets a hosts file named after it.
	Apps []appSpec `json:"apps"`
	// Users sign in with device code, browser, or username and password
	// through the public-client apps.
	Users []userSpec `json:"users,omitempty"`
	// SystemAssignedIdentity is the managed-identity hosts' system-assigned
	// identity; null for none.
	SystemAssignedIdentity *identitySpec `json:"systemAssignedIdentity,omitempty"`
	// UserAssignedIdentities are the hosts' user-assigned identities.
	UserAssignedIdentities []identitySpec `json:"userAssignedIdentities,omitempty"`
	// Hosts are the managed-identity hosts to start: imds, app-service,
	// azure-ml, cloud-shell, service-fabric, arc.
	Hosts []string `json:"hosts,omitempty"`
}

// appSpec is one app registration. Exactly one of Secret, Certificate,
// WorkloadIdentity and PublicClient says how it authenticates.
type appSpec struct {
	// Name names the app's hosts file, hosts/<Name>.sh. Required.
	Name     string `json:"name"`
	ClientID string `json:"clientId"`
	// Secret is a client secret the app accepts.
	Secret string `json:"secret,omitempty"`
	// Certificate makes a certificate for the app: <Name>.pem (certificate
	// and unencrypted key) and <Name>.pfx (PKCS#12, CertificatePassword).
	Certificate         bool   `json:"certificate,omitempty"`
	CertificatePassword string `json:"certificatePassword,omitempty"`
	// WorkloadIdentity federates the app with the emulator's Kubernetes
	// issuer for this service account, and writes a projected token file
	// that is renewed every few minutes.
	WorkloadIdentity *serviceAccountSpec `json:"workloadIdentity,omitempty"`
	// PublicClient makes the app a public client (device code, browser,
	// username and password) with http://localhost as redirect URI.
	PublicClient bool     `json:"publicClient,omitempty"`
	Roles        []string `json:"roles,omitempty"`
}

type serviceAccountSpec struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
}

type userSpec struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
}

type identitySpec struct {
	// Name is the identity's resource name, the last part of its resource ID.
	Name     string `json:"name,omitempty"`
	ClientID string `json:"clientId,omitempty"`
	ObjectID string `json:"objectId,omitempty"`
}

// The default tenant's fixed values.
const (
	certClientID    = "00000000-0000-4000-8000-0000000ce271"
	pfxPassword     = "emulator-pfx-password"
	demoPassword    = "demo-password"
	uamiTwoClientID = "00000000-0000-4000-8000-00000000a112"
	wiNamespace     = "default"
	wiAccount       = "workload"
)

// allHosts are the managed-identity hosts the emulator can start, in the
// order they are started and printed.
var allHosts = []string{"imds", "app-service", "azure-ml", "cloud-shell", "service-fabric", "arc"}

// defaultTenantSpec is the tenant provisioned without --tenant-file. The
// first user-assigned identity has the secret app's client ID: the printed
// env.sh sets AZURE_CLIENT_ID for EnvironmentCredential, and managed identity
// reads the same variable, so both find an identity with that ID.
func defaultTenantSpec(tenantID, clientID, secret string) tenantSpec {
	return tenantSpec{
		TenantID: tenantID,
		Apps: []appSpec{
			{Name: "secret", ClientID: clientID, Secret: secret},
			{Name: "certificate", ClientID: certClientID, Certificate: true, CertificatePassword: pfxPassword},
			{Name: "workload-identity", ClientID: wiClientID, WorkloadIdentity: &serviceAccountSpec{Namespace: wiNamespace, ServiceAccount: wiAccount}},
			{Name: "user", ClientID: cliClientID, PublicClient: true},
		},
		Users:                  []userSpec{{Username: demoUser, Password: demoPassword, Name: "Demo Developer"}},
		SystemAssignedIdentity: &identitySpec{Name: "system"},
		UserAssignedIdentities: []identitySpec{{Name: "uami-app", ClientID: clientID}, {Name: "uami-two", ClientID: uamiTwoClientID}},
		Hosts:                  allHosts,
	}
}

// readTenantSpec reads and checks a tenant description file.
func readTenantSpec(path string) (tenantSpec, error) {
	var s tenantSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("reading the tenant description: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("the tenant description %s is not valid (see DIR/tenant.json of a default run for the format): %w", path, err)
	}
	return s, s.check()
}

func (s tenantSpec) check() error {
	if s.TenantID == "" {
		return errors.New("the tenant description needs a tenantId")
	}
	names := map[string]bool{}
	for i, a := range s.Apps {
		if a.Name == "" || strings.ContainsAny(a.Name, `/\. `) {
			return fmt.Errorf("apps[%d]: name %q must be set and hold no '/', '\\', '.' or space (it names hosts/<name>.sh)", i, a.Name)
		}
		if names[a.Name] || slices.Contains(allHosts, a.Name) {
			return fmt.Errorf("apps[%d]: name %q is taken (app names and host names %s share hosts/)", i, a.Name, strings.Join(allHosts, ", "))
		}
		names[a.Name] = true
		if a.ClientID == "" {
			return fmt.Errorf("apps[%d] (%s): clientId is required", i, a.Name)
		}
		kinds := 0
		for _, set := range []bool{a.Secret != "", a.Certificate, a.WorkloadIdentity != nil, a.PublicClient} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return fmt.Errorf("apps[%d] (%s): set exactly one of secret, certificate, workloadIdentity and publicClient", i, a.Name)
		}
		if w := a.WorkloadIdentity; w != nil && (w.Namespace == "" || w.ServiceAccount == "") {
			return fmt.Errorf("apps[%d] (%s): workloadIdentity needs a namespace and a serviceAccount", i, a.Name)
		}
	}
	for i, u := range s.Users {
		if u.Username == "" || u.Password == "" {
			return fmt.Errorf("users[%d]: username and password are required", i)
		}
	}
	for _, h := range s.Hosts {
		if !slices.Contains(allHosts, h) {
			return fmt.Errorf("hosts: %q is not a host; use %s", h, strings.Join(allHosts, ", "))
		}
	}
	return nil
}

// provisioned is what provision set up: the variables of each hosts file
// and the things the command keeps running.
type provisioned struct {
	files  []hostFile // in print order
	notes  []string   // hosts not started, and why
	rotate []func() error
	wg     sync.WaitGroup
}

// hostFile is one hosts/<name>.sh: the variables a program on that host has.
type hostFile struct {
	name, title string
	vars        map[string]string
}

// provision registers s in e, starts its hosts and writes its files into dir.
func provision(e *emulator.Emulator, s tenantSpec, dir, arcKeyDir string) (*provisioned, error) {
	p := &provisioned{}
	if err := e.AddTenant(s.TenantID); err != nil {
		return nil, err
	}
	for _, u := range s.Users {
		if err := e.AddUser(emulator.User{TenantID: s.TenantID, Username: u.Username, Password: u.Password, Name: u.Name}); err != nil {
			return nil, err
		}
	}
	var k8s *emulator.KubernetesIssuer
	for _, a := range s.Apps {
		app := emulator.App{TenantID: s.TenantID, ClientID: a.ClientID, Roles: a.Roles}
		vars := map[string]string{"AZURE_TENANT_ID": s.TenantID, "AZURE_CLIENT_ID": a.ClientID}
		var title string
		var extra *hostFile
		switch {
		case a.Secret != "":
			app.Secrets = []string{a.Secret}
			vars["AZURE_CLIENT_SECRET"] = a.Secret
			title = "app with a client secret"
		case a.Certificate:
			cert, pemFile, pfxFile, err := writeAppCertificate(dir, a.Name, a.CertificatePassword)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", a.Name, err)
			}
			app.Certificates = []*x509.Certificate{cert}
			vars["AZURE_CLIENT_CERTIFICATE_PATH"] = pemFile
			pfx := map[string]string{"AZURE_TENANT_ID": s.TenantID, "AZURE_CLIENT_ID": a.ClientID, "AZURE_CLIENT_CERTIFICATE_PATH": pfxFile}
			if a.CertificatePassword != "" {
				pfx["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = a.CertificatePassword
			}
			extra = &hostFile{name: a.Name + "-pfx", title: "the same app with its PKCS#12 file (password protected)", vars: pfx}
			title = "app with a certificate (PEM)"
		case a.WorkloadIdentity != nil:
			if k8s == nil {
				var err error
				if k8s, err = emulator.NewKubernetesIssuer(nil); err != nil {
					return nil, err
				}
			}
			w := a.WorkloadIdentity
			app.Federated = []emulator.FederatedCredential{k8s.FederatedCredential(w.Namespace, w.ServiceAccount)}
			tokenDir := filepath.Join(dir, "serviceaccount", a.Name)
			if err := os.MkdirAll(tokenDir, 0o700); err != nil {
				return nil, err
			}
			file := emulator.NewProjectedTokenFile(tokenDir)
			rotate := func() error {
				tok, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: w.Namespace, Name: w.ServiceAccount})
				if err != nil {
					return err
				}
				return file.Write(tok)
			}
			if err := rotate(); err != nil {
				return nil, fmt.Errorf("app %s: writing its projected token: %w", a.Name, err)
			}
			p.rotate = append(p.rotate, rotate)
			vars["AZURE_FEDERATED_TOKEN_FILE"] = file.Path()
			// As the AKS workload identity webhook does.
			vars["AZURE_AUTHORITY_HOST"] = "https://login.microsoftonline.com/"
			title = "Kubernetes pod with workload identity"
		case a.PublicClient:
			app.PublicClient = true
			app.RedirectURIs = []string{"http://localhost"}
			title = "public client: device code, browser, username and password"
			if len(s.Users) > 0 {
				vars["AZURE_USERNAME"] = s.Users[0].Username
				vars["AZURE_PASSWORD"] = s.Users[0].Password
			}
		}
		if err := e.RegisterApp(app); err != nil {
			return nil, fmt.Errorf("app %s: %w", a.Name, err)
		}
		p.files = append(p.files, hostFile{name: a.Name, title: title, vars: vars})
		if extra != nil {
			p.files = append(p.files, *extra)
		}
	}
	if len(s.Users) > 0 {
		if err := e.SetSignIn(emulator.SignIn{TenantID: s.TenantID, Username: s.Users[0].Username}); err != nil {
			return nil, err
		}
	}
	if si := s.SystemAssignedIdentity; si != nil {
		e.SetSystemAssignedIdentity(emulator.ManagedIdentity{TenantID: s.TenantID, ClientID: si.ClientID, ObjectID: si.ObjectID, ResourceID: identityResourceID(si.Name)})
	}
	for _, ui := range s.UserAssignedIdentities {
		e.AddUserAssignedIdentity(emulator.ManagedIdentity{TenantID: s.TenantID, ClientID: ui.ClientID, ObjectID: ui.ObjectID, ResourceID: identityResourceID(ui.Name)})
	}
	for _, kind := range allHosts {
		if !slices.Contains(s.Hosts, kind) {
			continue
		}
		hf, note, err := startHost(e, kind, arcKeyDir)
		if err != nil {
			return nil, err
		}
		if note != "" {
			p.notes = append(p.notes, note)
			continue
		}
		p.files = append(p.files, hf)
	}
	return p, nil
}

func identityResourceID(name string) string {
	if name == "" {
		return ""
	}
	return "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}

// startHost starts one managed-identity host. A host that cannot run here
// (Arc without its key folder) gives a note instead.
func startHost(e *emulator.Emulator, kind, arcKeyDir string) (hostFile, string, error) {
	var h *emulator.MIHost
	var err error
	title := ""
	switch kind {
	case "imds":
		h, err = e.StartIMDS()
		title = "Azure VM (IMDS)"
	case "app-service":
		h, err = e.StartAppService()
		title = "App Service, Functions, Container Apps"
	case "azure-ml":
		h, err = e.StartAzureML()
		title = "Azure Machine Learning"
	case "cloud-shell":
		h, err = e.StartCloudShell()
		title = "Cloud Shell"
	case "service-fabric":
		h, err = e.StartServiceFabric()
		title = "Service Fabric"
	case "arc":
		if arcKeyDir == "" {
			return hostFile{}, "Azure Arc not started: clients accept the agent's key files only in its own folder, and this platform (" + runtime.GOOS + ") has none the emulator can use; pass --arc-key-dir.", nil
		}
		if mkErr := os.MkdirAll(arcKeyDir, 0o700); mkErr != nil {
			return hostFile{}, fmt.Sprintf("Azure Arc not started: clients accept the agent's key files only in %s, which could not be created (%v); run as root or pass --arc-key-dir.", arcKeyDir, mkErr), nil
		}
		h, err = e.StartArc(arcKeyDir)
		title = "Azure Arc-enabled server"
	}
	if err != nil {
		return hostFile{}, "", err
	}
	return hostFile{name: kind, title: title, vars: h.Env()}, "", nil
}

// defaultArcKeyDir is the folder where clients expect the Arc agent's key
// files: azidentity and azure-identity refuse a challenge naming another.
func defaultArcKeyDir() string {
	if runtime.GOOS == "linux" {
		return "/var/opt/azcmagent/tokens"
	}
	return ""
}

// writeAppCertificate makes a self-signed certificate for an app and
// writes it as <name>.pem (certificate and PKCS#8 key) and <name>.pfx.
func writeAppCertificate(dir, name, password string) (*x509.Certificate, string, string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "azcred emulator app " + name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, "", "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", "", err
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8})...)
	// LegacyDES (3DES, SHA-1 MAC): the one PKCS#12 form every client reads,
	// azidentity's included.
	pfx, err := pkcs12.LegacyDES.Encode(key, cert, nil, password)
	if err != nil {
		return nil, "", "", err
	}
	certDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, "", "", err
	}
	pemFile, pfxFile := filepath.Join(certDir, name+".pem"), filepath.Join(certDir, name+".pfx")
	if err := os.WriteFile(pemFile, pemData, 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(pfxFile, pfx, 0o600); err != nil {
		return nil, "", "", err
	}
	return cert, pemFile, pfxFile, nil
}

// keepRotating renews the projected service-account tokens every interval
// until ctx ends; wait on p.wg for it to finish.
func (p *provisioned) keepRotating(ctx context.Context, interval time.Duration, report func(error)) {
	if len(p.rotate) == 0 {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, r := range p.rotate {
					if err := r(); err != nil {
						report(err)
					}
				}
			}
		}
	}()
}
