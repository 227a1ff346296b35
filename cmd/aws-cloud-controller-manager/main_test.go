package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/names"
	genericcontrollermanager "k8s.io/controller-manager/app"
)

func TestControllerSet(t *testing.T) {
	cmd, err := newCommand()
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Flags().Lookup("concurrent-node-syncs").DefValue != "64" || cmd.Flags().Lookup("cloud-provider").DefValue != "aws" {
		t.Error("flag defaults not applied")
	}
	if !app.ControllersDisabledByDefault.Has(names.NodeRouteController) {
		t.Errorf("%s enabled by default", names.NodeRouteController)
	}
	// The service controller runs by default, as upstream's, on this
	// provider's Network Load Balancers.
	if app.ControllersDisabledByDefault.Has(names.ServiceLBController) {
		t.Errorf("%s disabled by default", names.ServiceLBController)
	}
	m := controllerInitializers(nil, &nodeIPAMOptions{maskSizeIPv4: defaultNodeCIDRMaskSizeIPv4})
	if len(m) != len(app.DefaultInitFuncConstructors)+1 {
		t.Errorf("controllers %v", app.ControllerNames(m))
	}
	if m[names.ServiceLBController].InitContext.ClientName != "service-controller" {
		t.Error("service controller replaced")
	}
	for _, name := range []string{names.NodeRouteController} {
		_, started, err := m[name].Constructor(m[name].InitContext, nil, nil)(context.Background(), genericcontrollermanager.ControllerContext{})
		if err != nil || started {
			t.Errorf("%s: started %v, err = %v; want accepted and not started", name, started, err)
		}
	}
	if m[names.CloudNodeController].InitContext.ClientName != "node-controller" {
		t.Error("cloud-node client name changed")
	}
}

// TestMain lets the test binary act as the command when re-executed with
// ACCM_TEST_RUN_MAIN=1, so the binary's own behaviour is tested without a
// separate build.
func TestMain(m *testing.M) {
	if os.Getenv("ACCM_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestHelpAndVersion runs the command with --help and --version and checks
// that both exit 0.
func TestHelpAndVersion(t *testing.T) {
	for arg, want := range map[string]string{"--help": "--cloud-config", "--version": "Kubernetes"} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], arg)
		cmd.Env = append(os.Environ(), "ACCM_TEST_RUN_MAIN=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", arg, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s output lacks %q:\n%s", arg, want, out)
		}
	}
}
