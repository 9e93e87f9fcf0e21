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
// manager: what it caches, how it elects a leader, and its flags.
package manager

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/record"
)

// DefaultNamespace is the operator's namespace unless --namespace says
// otherwise.
const DefaultNamespace = "keyward-system"

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
	// SkipNameValidation lets one process start several managers (tests).
	SkipNameValidation bool
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
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: kube.NewScheme(),
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
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	})
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{
		Namespace: o.Namespace, VerifierURL: o.VerifierURL, Clock: o.Clock,
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

func nonZero(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}

// Main is "keyward manager": it parses flags and runs until SIGTERM.
func Main(args []string) int {
	fs := flag.NewFlagSet("keyward manager", flag.ContinueOnError)
	var (
		o          Options
		kubeconfig string
	)
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&o.Namespace, "namespace", DefaultNamespace, "The operator's namespace: hashed Secrets, the leader election lease and webhook certificates live there.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.Func("watch-namespaces", "Comma-separated namespaces whose keyward objects the manager watches. Default: all.", func(v string) error {
		o.WatchNamespaces = strings.Split(v, ",")
		return nil
	})
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "Wait for the leader election lease before reconciling, so one manager acts at a time.")
	fs.StringVar(&o.VerifierURL, "verifier-url", "", "Base URL of the verifier Service, reported in KeyGroup status. Default: http://keyward-verifier.<namespace>.svc.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("manager")

	cfg, err := LoadConfig(kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward manager:", err)
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := New(ctx, cfg, o)
	if err != nil {
		log.Error(err, "Unable to set up the manager")
		return 1
	}
	log.Info("Starting manager", "namespace", o.Namespace, "leaderElection", o.LeaderElection)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "Manager stopped")
		return 1
	}
	return 0
}

// LoadConfig reads the kubeconfig at path, or finds one the usual way.
func LoadConfig(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return ctrl.GetConfig()
}
