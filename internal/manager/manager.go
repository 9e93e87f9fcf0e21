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

// Package manager wires keyward's controllers into a controller-runtime
// manager: what it caches, how it elects a leader, its webhook server. The
// command that runs it, with its flags, is internal/cmd.
package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/webhook"
)

// DefaultNamespace is the operator's namespace unless --namespace says
// otherwise.
const DefaultNamespace = kube.DefaultNamespace

// Options configure a manager.
type Options struct {
	// Namespace is the operator's namespace: hashed Secrets, the leader
	// election lease and the webhook certificate live there.
	Namespace string
	// MetricsAddr and ProbeAddr are listen addresses; "0" disables.
	MetricsAddr string
	ProbeAddr   string
	// WatchNamespaces limits the keyward objects the manager watches to
	// these namespaces; empty watches all.
	WatchNamespaces []string
	// LeaderElection makes the manager wait for the lease before it
	// reconciles, so one manager acts at a time.
	LeaderElection bool
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election;
	// zero keeps controller-runtime's defaults.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// VerifierURL is the verifier Service's base URL, for KeyGroup status.
	VerifierURL string
	// Clock tells the time; tests move it.
	Clock clock.Clock
	// NewClient replaces the client constructor (tests count API writes).
	NewClient client.NewClientFunc
	// MinRotationEvery is the shortest spec.rotation.every of an APIKey the
	// webhook admits (default 1h).
	MinRotationEvery time.Duration
	// PromoteAfter is how long a rotation's successor is live at the
	// verifiers before it is promoted to the delivery Secret's api-key
	// (default 2s).
	PromoteAfter time.Duration
	// MaxConcurrentReconciles is each controller's number of workers
	// (default controllers.DefaultMaxConcurrentReconciles).
	MaxConcurrentReconciles int
	// Instance, when set, is appended to each controller's name (apikey-x),
	// so that several managers run in one process (tests) and their
	// controllers' metrics stay apart.
	Instance string
	// Webhooks, when set, serves keyward's admission webhooks; nil runs
	// the controllers alone.
	Webhooks *WebhookOptions
}

// CertMode says who provides the webhook server's TLS certificate.
type CertMode string

const (
	// CertModeSelfManaged means that the manager creates a CA and serving
	// certificate, keeps them in a Secret in its namespace, injects the CA
	// bundle into the webhook configurations and rotates both before they
	// expire.
	CertModeSelfManaged CertMode = "self-managed"
	// CertModeExternal means that tls.crt and tls.key appear in CertDir (cert-manager
	// through a mounted Secret, envtest) and something else injects the CA
	// bundle (cert-manager's cainjector). The server reloads the files when
	// they change.
	CertModeExternal CertMode = "external"
)

// WebhookOptions configure the admission webhook server.
type WebhookOptions struct {
	// Host and Port the server listens on. Default port 9443.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key: read in external mode, written in
	// self-managed mode. Default <tmp>/k8s-webhook-server/serving-certs.
	CertDir string
	// CertMode is self-managed (the default) or external.
	CertMode CertMode
	// ServiceName is the webhook Service, whose DNS names the self-managed
	// certificate is for. Default keyward-webhook.
	ServiceName string
	// CertSecretName is the Secret of the self-managed certificate.
	// Default keyward-webhook-cert.
	CertSecretName string
	// ValidatingConfigurationName and MutatingConfigurationName are the
	// webhook configurations that the self-managed CA bundle is injected
	// into. Defaults keyward-validating-webhook-configuration and
	// keyward-mutating-webhook-configuration.
	ValidatingConfigurationName, MutatingConfigurationName string
	// ExtraDNSNames are added to the self-managed serving certificate, such
	// as "localhost" when the webhook configurations call a URL on this
	// machine.
	ExtraDNSNames []string
	// CACertDuration, ServerCertDuration, LookaheadInterval and
	// RotationCheckFrequency tune self-managed rotation; zero keeps the
	// defaults (10 years, 1 year, renew 90 days before expiry, checked
	// every 12 hours). Tests shorten them.
	CACertDuration, ServerCertDuration, LookaheadInterval, RotationCheckFrequency time.Duration
}

// DefaultWebhookPort is the port the webhook server listens on.
const DefaultWebhookPort = 9443

// webhookServer builds the webhook server, and the self-managed
// certificate keeper when it has one.
func webhookServer(o *WebhookOptions, namespace string) (crwebhook.Server, *webhook.Certs, error) {
	if o.Port == 0 {
		o.Port = DefaultWebhookPort
	}
	if o.CertDir == "" {
		o.CertDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	// HTTP/2 stays off: the API server speaks HTTP/1.1 to webhooks just as
	// well, and it keeps the server out of HTTP/2 stream-reset floods.
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	var certs *webhook.Certs
	switch o.CertMode {
	case CertModeSelfManaged, "":
		certs = webhook.NewCerts(webhook.CertOptions{
			Namespace:                      namespace,
			SecretName:                     o.CertSecretName,
			ServiceName:                    o.ServiceName,
			ExtraDNSNames:                  o.ExtraDNSNames,
			CertDir:                        o.CertDir,
			ValidatingWebhookConfiguration: o.ValidatingConfigurationName,
			MutatingWebhookConfiguration:   o.MutatingConfigurationName,
			CACertDuration:                 o.CACertDuration,
			ServerCertDuration:             o.ServerCertDuration,
			LookaheadInterval:              o.LookaheadInterval,
			RotationCheckFrequency:         o.RotationCheckFrequency,
		})
		tlsOpts = append(tlsOpts, certs.TLSOption)
	case CertModeExternal:
	default:
		return nil, nil, fmt.Errorf("unknown webhook certificate mode %q: want %s or %s", o.CertMode, CertModeSelfManaged, CertModeExternal)
	}
	return crwebhook.NewServer(crwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.CertDir, TLSOpts: tlsOpts}), certs, nil
}

// New builds a manager with keyward's controllers registered.
func New(ctx context.Context, cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.VerifierURL == "" {
		o.VerifierURL = fmt.Sprintf("http://keyward-verifier.%s.svc", o.Namespace)
	}
	hashed := labels.SelectorFromSet(labels.Set{record.LabelHashedKey: "true"})
	var watched map[string]cache.Config
	if len(o.WatchNamespaces) > 0 {
		watched = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			watched[ns] = cache.Config{}
		}
	}
	var (
		whServer crwebhook.Server
		certs    *webhook.Certs
	)
	if o.Webhooks != nil {
		var err error
		if whServer, certs, err = webhookServer(o.Webhooks, o.Namespace); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:        kube.NewScheme(),
		WebhookServer: whServer,
		Cache: cache.Options{
			// Only the hashed Secrets in the operator's namespace are
			// cached; delivery Secrets are read from the API server on the
			// rare occasion they are needed. Nothing caches every Secret.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {
					Label:      hashed,
					Namespaces: map[string]cache.Config{o.Namespace: {}},
				},
			},
			DefaultNamespaces: watched,
			DefaultTransform:  cache.TransformStripManagedFields(),
		},
		NewClient:                     o.NewClient,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              "keyward-manager.keyward.dev",
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 nonZero(o.LeaseDuration),
		RenewDeadline:                 nonZero(o.RenewDeadline),
		RetryPeriod:                   nonZero(o.RetryPeriod),
	})
	if err != nil {
		return nil, err
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("registering the field indexes: %w", err)
	}
	// One Reviewer for the webhook and the controller: an APIKey's grant
	// is checked at admission and again before minting, and in a burst
	// of keys those reviews are the same question.
	reviewer := grants.NewReviewer(mgr.GetClient())
	book, err := index.RegisterBook(ctx, mgr.GetCache(), o.Namespace)
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Namespace: o.Namespace, VerifierURL: o.VerifierURL, Clock: o.Clock, Instance: o.Instance,
		PromoteAfter: o.PromoteAfter, MaxConcurrentReconciles: o.MaxConcurrentReconciles, Grants: reviewer, Book: book,
	}); err != nil {
		return nil, err
	}
	if err := addChecks(mgr, book); err != nil {
		return nil, err
	}
	if o.Webhooks != nil {
		if err := addWebhooks(ctx, mgr, webhook.Options{Clock: o.Clock, MinRotationEvery: o.MinRotationEvery, Grants: reviewer, Book: book}, certs); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// addChecks adds the manager's health and readiness checks.
func addChecks(mgr ctrl.Manager, book *index.Book) error {
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	// Not ready, so not sent admission reviews, before the book of keys
	// that the limits are counted from holds what the cache listed.
	return mgr.AddReadyzCheck("book", func(*http.Request) error {
		if !book.Synced() {
			return errors.New("the book of APIKeys and hashed Secrets has not taken in the cache's first lists")
		}
		return nil
	})
}

// addWebhooks registers the admission webhooks and, in self-managed mode,
// the certificate keeper; /readyz waits for both.
func addWebhooks(ctx context.Context, mgr ctrl.Manager, o webhook.Options, certs *webhook.Certs) error {
	if err := webhook.Setup(mgr, o); err != nil {
		return err
	}
	started := mgr.GetWebhookServer().StartedChecker()
	if certs == nil {
		return mgr.AddReadyzCheck("webhook", started)
	}
	if err := certs.Setup(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook-certs", certs.ReadyCheck); err != nil {
		return err
	}
	// The started check dials the server over TLS. Before the certificate is
	// in place that handshake can only fail, and the server logs each
	// failure: a probe every 50 ms (keyward dev's) printed a screenful of
	// "TLS handshake error" lines at every start. webhook-certs already
	// says what is missing.
	return mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		if certs.ReadyCheck(req) != nil {
			return errors.New("waiting for the serving certificate before dialing the webhook server")
		}
		return started(req)
	})
}

func nonZero(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}
