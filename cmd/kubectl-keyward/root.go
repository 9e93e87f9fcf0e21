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

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/kube"
)

// options are what every command shares: how to reach the cluster, where
// to write, and the time.
type options struct {
	// config holds kubectl's flags: --kubeconfig, --context, --namespace,
	// --as and the rest.
	config  *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	// now tells the time; tests move it.
	now func() time.Time
}

// newRootCommand returns "kubectl keyward" with its commands.
func newRootCommand(streams genericiooptions.IOStreams, now func() time.Time) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), streams: streams, now: now}
	root := &cobra.Command{
		Use:   "kubectl-keyward",
		Short: "Read, rotate, revoke and identify keyward API keys",
		Long: `kubectl keyward: read a new key once, rotate and revoke keys, identify a
leaked key from its plaintext, and list keys that expire soon or go unused.

A leaked key is read from stdin, checked and hashed on this machine: the
plaintext is never sent anywhere.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl keyward"},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.config.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newGetKeyCommand(o),
		newRotateCommand(o),
		newRevokeCommand(o),
		newIdentifyCommand(o),
		newExpiringCommand(o),
		newUnusedCommand(o),
	)
	return root
}

// client returns a client for the cluster the flags name, with keyward's
// types. It reads built-in types as protobuf, which makes listing
// thousands of hashed Secrets cheap.
func (o *options) client() (client.Client, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	// client-go's default of 5 requests a second would make identify wait
	// on its own rate limiter while it pages through thousands of hashed
	// Secrets; kubectl raised its own defaults the same way.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// namespace returns the namespace the flags or the kubeconfig's context
// name, like kubectl.
func (o *options) namespace() (string, error) {
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// cluster is what a command needs to act: a client and the namespace.
type cluster struct {
	client    client.Client
	namespace string
}

// connect returns the cluster the flags name.
func (o *options) connect() (*cluster, error) {
	ns, err := o.namespace()
	if err != nil {
		return nil, err
	}
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	return &cluster{client: c, namespace: ns}, nil
}

// context returns the command's context.
func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
