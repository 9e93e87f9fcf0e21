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

// Package cmd holds the entry points of keyward's three commands, side by
// side: each parses its flags and runs one component until SIGTERM.
// main.go only dispatches to them.
package cmd

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/webhook"
)

// Manager is "keyward manager": it parses flags and runs until SIGTERM.
func Manager(args []string) int {
	fs := flag.NewFlagSet("keyward manager", flag.ContinueOnError)
	var (
		o          manager.Options
		kubeconfig string
	)
	fs.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&o.Namespace, "namespace", kube.DefaultNamespace, "The operator's namespace: hashed Secrets, the leader election lease and webhook certificates live there.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.Func("watch-namespaces", "Comma-separated namespaces whose keyward objects the manager watches. Default: all.", func(v string) error {
		o.WatchNamespaces = strings.Split(v, ",")
		return nil
	})
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "Wait for the leader election lease before reconciling, so one manager acts at a time.")
	fs.DurationVar(&o.MinRotationEvery, "min-rotation-every", webhook.DefaultMinRotationEvery, "The shortest spec.rotation.every of an APIKey the webhook admits.")
	fs.DurationVar(&o.PromoteAfter, "rotation-promote-after", controllers.DefaultPromoteAfter, "How long a rotated key's successor is live at the verifiers before it is written to the delivery Secret's api-key.")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "Workers per controller. Issuing a key waits on a few API requests in turn, so a burst of keys is issued about this many at a time.")
	fs.StringVar(&o.VerifierURL, "verifier-url", "", "Base URL of the verifier Service, reported in KeyGroup status. Default: http://keyward-verifier.<namespace>.svc.")
	wh := manager.WebhookOptions{}
	var certMode string
	fs.IntVar(&wh.Port, "webhook-port", manager.DefaultWebhookPort, "Port the admission webhook server listens on; 0 runs no webhooks.")
	fs.StringVar(&wh.Host, "webhook-host", "", "Address the admission webhook server listens on. Default: all.")
	fs.StringVar(&wh.CertDir, "webhook-cert-dir", "", "Directory of the webhook's tls.crt and tls.key: read with --webhook-cert-mode=external, written with self-managed. Default: <tmp>/k8s-webhook-server/serving-certs.")
	fs.StringVar(&certMode, "webhook-cert-mode", string(manager.CertModeSelfManaged), "Who provides the webhook certificate: self-managed (the manager creates, injects and rotates it) or external (cert-manager mounts it in --webhook-cert-dir and injects the CA bundle).")
	fs.StringVar(&wh.ServiceName, "webhook-service-name", webhook.DefaultServiceName, "The webhook Service, in --namespace, whose DNS names the self-managed certificate is for.")
	fs.StringVar(&wh.CertSecretName, "webhook-cert-secret", webhook.DefaultCertSecretName, "The Secret, in --namespace, that holds the self-managed CA and certificate.")
	fs.StringVar(&wh.ValidatingConfigurationName, "validating-webhook-configuration", webhook.DefaultValidatingWebhookConfiguration, "The ValidatingWebhookConfiguration the self-managed CA bundle is injected into.")
	fs.StringVar(&wh.MutatingConfigurationName, "mutating-webhook-configuration", webhook.DefaultMutatingWebhookConfiguration, "The MutatingWebhookConfiguration the self-managed CA bundle is injected into.")
	fs.Func("webhook-extra-dns-names", "Comma-separated DNS names added to the self-managed certificate (such as localhost).", func(v string) error {
		wh.ExtraDNSNames = strings.Split(v, ",")
		return nil
	})
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("manager")
	if wh.Port != 0 {
		wh.CertMode = manager.CertMode(certMode)
		o.Webhooks = &wh
	}

	cfg, err := kube.LoadConfig(kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward manager:", err)
		return 1
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := manager.New(ctx, cfg, o)
	if err != nil {
		log.Error(err, "Unable to set up the manager")
		return 1
	}
	log.Info("Starting manager", "namespace", o.Namespace, "leaderElection", o.LeaderElection, "webhooks", o.Webhooks != nil)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "Manager stopped")
		return 1
	}
	return 0
}

// parse parses a command's flags; when it must not run (a bad flag, or
// -help), it returns false and the exit code.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		return 0, false
	}
	return 2, false
}
