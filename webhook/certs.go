/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// The webhook's certificate is kept by the manager itself (--webhook-cert-mode
// self-managed), with open-policy-agent/cert-controller's rotator:
//
//   - a CA and a serving certificate for the webhook Service's DNS names live
//     in one Secret in the operator's namespace (created empty at start-up
//     when missing, filled by the rotator);
//   - the rotator injects the CA into the webhook configurations' caBundle
//     and renews the serving certificate (and the CA) before they expire,
//     checking every RotationCheckFrequency;
//   - the webhook server serves whatever the Secret holds, picked up through
//     a watch of that one Secret, with no restart and no kubelet volume
//     refresh delay; a copy goes to CertDir for the rotator's readiness check.
//
// Every replica serves webhooks, so none of this waits for leader election;
// replicas racing to fill the Secret settle through its resourceVersion.
//
// +kubebuilder:rbac:groups="",namespace=keyward-system,resources=secrets,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=update,resourceNames=keyward-validating-webhook-configuration;keyward-mutating-webhook-configuration

// Defaults of CertOptions.
const (
	DefaultCertSecretName                 = "keyward-webhook-cert" //nolint:gosec // a Secret's name, not a credential
	DefaultServiceName                    = "keyward-webhook"
	DefaultValidatingWebhookConfiguration = "keyward-validating-webhook-configuration"
	DefaultMutatingWebhookConfiguration   = "keyward-mutating-webhook-configuration"
)

// certificateExpiry is when the self-managed certificates expire: the
// serving certificate, and the CA that the webhook configurations' caBundle
// holds. Set each time a new certificate is loaded; absent in external mode
// (cert-manager exports its own certificate metrics).
var certificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "keyward_webhook_certificate_expiry_timestamp_seconds",
	Help: "When the self-managed webhook certificate expires, in seconds since the epoch: the serving certificate, or the CA in the webhook configurations' caBundle.",
}, []string{"certificate"})

func init() { metrics.Registry.MustRegister(certificateExpiry) }

// CertOptions configure the self-managed webhook certificate.
type CertOptions struct {
	// Namespace is the operator's namespace, where the Secret lives and
	// the webhook Service is.
	Namespace string
	// SecretName holds the CA and serving certificate. Default
	// keyward-webhook-cert.
	SecretName string
	// ServiceName is the webhook Service; the certificate is for
	// <service>.<namespace>.svc (and .svc.cluster.local). Default
	// keyward-webhook.
	ServiceName string
	// ExtraDNSNames are added to the serving certificate, such as
	// "localhost" for webhook configurations that call a URL on this
	// machine (keyward dev, tests).
	ExtraDNSNames []string
	// CertDir receives a copy of the serving certificate and key.
	CertDir string
	// ValidatingWebhookConfiguration and MutatingWebhookConfiguration name
	// the configurations whose caBundle is kept; "-" for none. Defaults
	// keyward-validating-webhook-configuration and
	// keyward-mutating-webhook-configuration.
	ValidatingWebhookConfiguration, MutatingWebhookConfiguration string
	// CACertDuration and ServerCertDuration are how long new certificates
	// are valid (cert-controller's defaults: 10 years and 1 year);
	// LookaheadInterval is how long before expiry they are renewed (90
	// days), checked every RotationCheckFrequency (12 hours). Tests shorten
	// them.
	CACertDuration, ServerCertDuration, LookaheadInterval, RotationCheckFrequency time.Duration
}

// Certs serves the self-managed certificate to the webhook server. Build it
// with NewCerts before the manager (its TLSOption goes into the webhook
// server's options), then Setup with the manager.
type Certs struct {
	o       CertOptions
	current atomic.Pointer[servingCert]
	// ready closes once the certificate is in CertDir and the CA bundle
	// injected (the rotator closes it).
	ready chan struct{}
}

type servingCert struct {
	pem  []byte
	cert *tls.Certificate
}

// NewCerts returns the certificate keeper for o, with defaults filled in.
func NewCerts(o CertOptions) *Certs {
	if o.SecretName == "" {
		o.SecretName = DefaultCertSecretName
	}
	if o.ServiceName == "" {
		o.ServiceName = DefaultServiceName
	}
	if o.ValidatingWebhookConfiguration == "" {
		o.ValidatingWebhookConfiguration = DefaultValidatingWebhookConfiguration
	}
	if o.MutatingWebhookConfiguration == "" {
		o.MutatingWebhookConfiguration = DefaultMutatingWebhookConfiguration
	}
	return &Certs{o: o, ready: make(chan struct{})}
}

// TLSOption makes the webhook server present the current certificate.
func (c *Certs) TLSOption(cfg *tls.Config) {
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if s := c.current.Load(); s != nil {
			return s.cert, nil
		}
		return nil, errors.New("the webhook serving certificate is not ready yet")
	}
}

// Setup creates the Secret when it is missing and adds the rotator and the
// Secret watch to mgr.
func (c *Certs) Setup(ctx context.Context, mgr ctrl.Manager) error {
	if c.o.Namespace == "" {
		return errors.New("webhook certificates: the operator namespace is required")
	}
	key := types.NamespacedName{Namespace: c.o.Namespace, Name: c.o.SecretName}
	if err := ensureSecret(ctx, mgr.GetAPIReader(), mgr.GetClient(), key); err != nil {
		return err
	}
	dns := fmt.Sprintf("%s.%s.svc", c.o.ServiceName, c.o.Namespace)
	var hooks []rotator.WebhookInfo
	if n := c.o.ValidatingWebhookConfiguration; n != "-" {
		hooks = append(hooks, rotator.WebhookInfo{Name: n, Type: rotator.Validating})
	}
	if n := c.o.MutatingWebhookConfiguration; n != "-" {
		hooks = append(hooks, rotator.WebhookInfo{Name: n, Type: rotator.Mutating})
	}
	if err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      key,
		CertDir:        c.o.CertDir,
		CAName:         "keyward-webhook-ca",
		CAOrganization: "keyward",
		DNSName:        dns,
		ExtraDNSNames: append([]string{
			dns + ".cluster.local",
			fmt.Sprintf("%s.%s", c.o.ServiceName, c.o.Namespace),
			c.o.ServiceName,
		}, c.o.ExtraDNSNames...),
		IsReady:                c.ready,
		Webhooks:               hooks,
		FieldOwner:             "keyward-manager",
		RequireLeaderElection:  false,
		CaCertDuration:         c.o.CACertDuration,
		ServerCertDuration:     c.o.ServerCertDuration,
		LookaheadInterval:      c.o.LookaheadInterval,
		RotationCheckFrequency: c.o.RotationCheckFrequency,
		ControllerName:         "webhook-cert-rotator",
	}); err != nil {
		return fmt.Errorf("adding the webhook certificate rotator: %w", err)
	}
	return c.watchSecret(ctx, mgr, key)
}

// ensureSecret creates the empty certificate Secret that the rotator fills
// (it only updates).
func ensureSecret(ctx context.Context, r client.Reader, w client.Writer, key types.NamespacedName) error {
	err := r.Get(ctx, key, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		if err != nil {
			return fmt.Errorf("getting the webhook certificate Secret %s: %w", key, err)
		}
		return nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{
			"app.kubernetes.io/name":       "keyward",
			"app.kubernetes.io/component":  "webhook",
			keywardv1alpha1.LabelManagedBy: keywardv1alpha1.ManagedBy,
		}},
		Type: corev1.SecretTypeOpaque,
	}
	if err := w.Create(ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the webhook certificate Secret %s: %w", key, err)
	}
	logf.FromContext(ctx).Info("Created the webhook certificate Secret", "secret", key)
	return nil
}

// secretCache is a cache of the one certificate Secret, started with the
// manager's caches.
type secretCache struct{ cache.Cache }

func (c secretCache) GetCache() cache.Cache { return c.Cache }

// watchSecret loads the serving certificate whenever the Secret changes.
func (c *Certs) watchSecret(ctx context.Context, mgr ctrl.Manager, key types.NamespacedName) error {
	sc, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
			Namespaces: map[string]cache.Config{key.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", key.Name),
		}},
	})
	if err != nil {
		return fmt.Errorf("building the webhook certificate cache: %w", err)
	}
	inf, err := sc.GetInformer(ctx, &corev1.Secret{}, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	log := mgr.GetLogger().WithName("webhook-certs")
	load := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Name != key.Name || s.Namespace != key.Namespace {
			return
		}
		if err := c.load(s); err != nil {
			log.Error(err, "Unable to load the webhook serving certificate", "secret", key)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    load,
		UpdateFunc: func(_, obj any) { load(obj) },
	}); err != nil {
		return err
	}
	return mgr.Add(secretCache{sc})
}

// load serves the certificate in s, when it holds a new one, and copies it
// to CertDir.
func (c *Certs) load(s *corev1.Secret) error {
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil // not filled yet
	}
	if cur := c.current.Load(); cur != nil && bytes.Equal(cur.pem, crt) {
		return nil
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return fmt.Errorf("parsing the certificate and key: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("parsing the certificate: %w", err)
	}
	pair.Leaf = leaf
	if c.o.CertDir != "" {
		if err := writeFiles(c.o.CertDir, map[string][]byte{corev1.TLSPrivateKeyKey: key, corev1.TLSCertKey: crt}); err != nil {
			return err
		}
	}
	c.current.Store(&servingCert{pem: crt, cert: &pair})
	certificateExpiry.WithLabelValues("serving").Set(float64(leaf.NotAfter.Unix()))
	if b, _ := pem.Decode(s.Data["ca.crt"]); b != nil {
		if ca, err := x509.ParseCertificate(b.Bytes); err == nil {
			certificateExpiry.WithLabelValues("ca").Set(float64(ca.NotAfter.Unix()))
		}
	}
	logf.Log.WithName("webhook-certs").Info("Serving a new webhook certificate", "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "dnsNames", leaf.DNSNames)
	return nil
}

// writeFiles writes each file through a rename, so a reader never sees a
// half-written one.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for name, data := range files {
		tmp, err := os.CreateTemp(dir, "."+name+"-*")
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		_, werr := tmp.Write(data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// ReadyCheck is a readyz check: ready once the serving certificate is
// loaded and the CA bundle injected into the webhook configurations.
func (c *Certs) ReadyCheck(*http.Request) error {
	select {
	case <-c.ready:
	default:
		return errors.New("webhook certificates are not ready: waiting for the CA bundle to be injected")
	}
	if c.current.Load() == nil {
		return errors.New("webhook certificates are not ready: no serving certificate loaded")
	}
	return nil
}

// Ready closes once the certificates are ready.
func (c *Certs) Ready() <-chan struct{} { return c.ready }
