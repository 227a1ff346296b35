// Command ec2sim serves the EC2 Query API and IMDSv2 emulator of package
// tests/ec2sim for demos and manual testing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws-ipv6-ccm/aws-ipv6-ccm/tests/ec2sim"
)

func main() {
	scenario := flag.String("scenario", "", "scenario YAML file (default: an empty account with default subnets)")
	listen := flag.String("listen", "127.0.0.1:0", "listen address; with an IPv4 address [::1] on the same port is served too, an IPv6 address (e.g. [::1]:8787) is served alone")
	imdsListen := flag.String("imds-listen", "", "extra listen address serving only IMDS, e.g. [fd00:ec2::254]:80")
	policyFile := flag.String("policy", "", "IAM policy JSON restricting the allowed actions")
	throttling := flag.Bool("throttling", false, "enforce AWS's default API token buckets")
	verify := flag.Bool("verify-signatures", true, "recompute SigV4 signatures with the test secret")
	flag.Parse()
	if err := run(*scenario, *listen, *imdsListen, *policyFile, *throttling, *verify); err != nil {
		fmt.Fprintln(os.Stderr, "ec2sim:", err)
		os.Exit(1)
	}
}

func run(scenarioFile, listen, imdsListen, policyFile string, throttling, verify bool) error {
	opts := ec2sim.Options{Addr: listen, IMDSAddr: imdsListen, Throttling: throttling, VerifySignatures: verify}
	if scenarioFile != "" {
		sc, err := ec2sim.LoadScenario(scenarioFile)
		if err != nil {
			return err
		}
		opts.Scenario = sc
	}
	if policyFile != "" {
		data, err := os.ReadFile(policyFile)
		if err != nil {
			return fmt.Errorf("read policy: %w", err)
		}
		opts.Policy = data
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sim, err := ec2sim.Start(opts)
	if err != nil {
		return err
	}
	defer sim.Close()
	if imdsListen != "" {
		fmt.Printf("ec2sim listening endpoint=%s ipv6=%s imds=%s region=%s\n", sim.Endpoint(), sim.EndpointIPv6(), sim.IMDSEndpoint(), sim.Region())
	} else {
		fmt.Printf("ec2sim listening endpoint=%s ipv6=%s region=%s\n", sim.Endpoint(), sim.EndpointIPv6(), sim.Region())
	}
	<-ctx.Done()
	return nil
}
