package ec2sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

func TestParseScenarioStrict(t *testing.T) {
	bad := map[string]string{
		"unknown field":   "region: us-east-1\nfoo: bar\n",
		"unknown nested":  "instances:\n- id: i-0123456789abcdef0\n  colour: red\n",
		"bad cidr":        "subnets:\n- cidr: 10.0.0.0/33\n",
		"ipv6 not /64":    "subnets:\n- cidr: 10.0.0.0/24\n  ipv6CIDR: 2600::/56\n",
		"prefix not /80":  "instances:\n- enis:\n  - ipv6Prefixes: [\"2600::/64\"]\n",
		"bad state":       "instances:\n- state: sleeping\n",
		"bad private ip":  "instances:\n- enis:\n  - privateIPs: [\"2600::1\"]\n",
		"host bits":       "vpcs:\n- cidr: 10.0.0.1/16\n",
		"missing subnets": "subnets:\n- zone: us-east-1a\n",
	}
	for name, y := range bad {
		if _, err := ParseScenario([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	badWorld := map[string]string{
		"unknown subnet":  "instances:\n- subnet: subnet-0123456789abcdef0\n",
		"unknown type":    "instances:\n- type: z9.mega\n",
		"malformed id":    "instances:\n- id: i-xyz\n",
		"duplicate id":    "instances:\n- id: i-0123456789abcdef0\n- id: i-0123456789abcdef0\n",
		"too many enis":   "instances:\n- type: t3.micro\n  enis: [{deviceIndex: 0}, {deviceIndex: 1}, {deviceIndex: 2}]\n",
		"duplicate index": "instances:\n- enis: [{deviceIndex: 0}, {deviceIndex: 0}]\n",
		"ipv4 in use":     "instances:\n- enis: [{privateIPs: [10.0.0.10]}]\n- enis: [{privateIPs: [10.0.0.10]}]\n",
		"ipv6 no subnet":  "subnets:\n- cidr: 10.0.0.0/24\ninstances:\n- enis: [{ipv6AddressCount: 1}]\n",
		"bad imds":        "imdsInstance: i-0123456789abcdef0\n",
	}
	for name, y := range badWorld {
		sc, err := ParseScenario([]byte(y))
		if err != nil {
			t.Errorf("%s: parse: %v", name, err)
			continue
		}
		if sim, err := Start(Options{Scenario: sc}); err == nil {
			sim.Close()
			t.Errorf("%s: started", name)
		}
	}
}

func TestScenarioDefaults(t *testing.T) {
	sc, err := ParseScenario([]byte("region: eu-west-1\ninstances:\n- {}\n- {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := Start(Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	st := sim.State()
	if len(st.Subnets) != 3 || st.Subnets[0].Zone != "eu-west-1a" || st.Subnets[0].IPv6CIDR == "" {
		t.Errorf("default subnets = %+v", st.Subnets)
	}
	idRe := regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	eniRe := regexp.MustCompile(`^eni-[0-9a-f]{17}$`)
	macRe := regexp.MustCompile(`^02(:[0-9a-f]{2}){5}$`)
	dnsRe := regexp.MustCompile(`^ip-10-0-\d+-\d+\.eu-west-1\.compute\.internal$`)
	for _, in := range st.Instances {
		if !idRe.MatchString(in.ID) || !dnsRe.MatchString(in.PrivateDNSName) || in.State != "running" || len(in.ENIs) != 1 ||
			!eniRe.MatchString(in.ENIs[0].ID) || !macRe.MatchString(in.ENIs[0].MAC) {
			t.Errorf("instance = %+v", in)
		}
	}
	if st.Instances[0].PrivateIP == st.Instances[1].PrivateIP || st.Instances[0].ENIs[0].MAC == st.Instances[1].ENIs[0].MAC {
		t.Error("two instances share an address or MAC")
	}
	// Same scenario, same IDs.
	sim2, err := Start(Options{Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer sim2.Close()
	if sim2.State().Instances[1].ID != st.Instances[1].ID {
		t.Error("IDs are not deterministic")
	}
}

func TestLoadDemoScenario(t *testing.T) {
	sc, err := LoadScenario("testdata/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sim, c := newTestSim(t, Options{Scenario: sc})
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(out); len(got) != 6 {
		t.Errorf("demo instances = %v", got)
	}
	if sim.Region() != "eu-west-1" {
		t.Errorf("region = %s", sim.Region())
	}
}

func TestGenerateScenario(t *testing.T) {
	sim, c := newTestSim(t, Options{Scenario: GenerateScenario(Generate{Instances: 300, IPv6Subnet: true, PrePrefixed: true})})
	st := sim.State()
	if len(st.Instances) != 300 {
		t.Fatalf("instances = %d", len(st.Instances))
	}
	prefixes := map[string]bool{}
	for _, in := range st.Instances {
		if len(in.ENIs[0].IPv6Prefixes) != 1 || len(in.ENIs[0].IPv6) != 1 || prefixes[in.ENIs[0].IPv6Prefixes[0]] {
			t.Fatalf("instance %s: %+v", in.ID, in.ENIs[0])
		}
		prefixes[in.ENIs[0].IPv6Prefixes[0]] = true
	}
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{st.Instances[7].ID}})
	if err != nil || aws.ToString(out.Reservations[0].Instances[0].PrivateDnsName) != st.Instances[7].PrivateDNSName {
		t.Errorf("describe generated instance: %v", err)
	}
}

func TestEnv(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	env := sim.Env()
	for _, want := range []string{"AWS_ENDPOINT_URL_EC2=" + sim.Endpoint(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + sim.Endpoint(),
		"AWS_ACCESS_KEY_ID=" + AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + SecretAccessKey} {
		if !slices.Contains(env, want) {
			t.Errorf("Env() lacks %s", want)
		}
	}
}

func TestAdminEndpoint(t *testing.T) {
	sim, c := newTestSim(t, Options{})
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sim.Endpoint()+"/_ec2sim/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	get := func(path string, v any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sim.Endpoint()+"/_ec2sim/"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	code, out := post("instances", `{"subnet":"subnet-0aaaaaaaaaaaaaaa1","type":"t3.micro","tags":{"Name":"admin"}}`)
	id, _ := out["id"].(string)
	if code != 200 || id == "" {
		t.Fatalf("add instance: %d %v", code, out)
	}
	if code, out := post("instances/"+id+"/state", `{"state":"stopped"}`); code != 200 {
		t.Fatalf("set state: %d %v", code, out)
	}
	if code, _ := post("faults", `{"action":"DescribeVpcs","errorRate":1,"code":"Unavailable","status":503}`); code != 200 {
		t.Fatal("set fault")
	}
	_, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
	wantCode(t, err, "Unavailable")
	if code, _ := post("throttling", `{"enabled":true}`); code != 200 {
		t.Fatal("throttling")
	}
	var counts map[string]map[string]int
	get("counts", &counts)
	if counts["DescribeVpcs"]["Unavailable"] != 1 {
		t.Errorf("counts = %v", counts)
	}
	var st State
	get("state", &st)
	if in, ok := st.Instance(id); !ok || in.State != "stopped" || in.Tags["Name"] != "admin" {
		t.Errorf("state of %s = %+v", id, in)
	}
	if code, _ := post("counts/reset", ``); code != 200 || len(sim.Counts()) != 0 {
		t.Error("reset counts")
	}
	if code, _ := post("faults", `{"action":"x","latency":"soon"}`); code != 400 {
		t.Error("bad latency accepted")
	}
	if code, _ := post("nope", `{}`); code != 404 {
		t.Error("unknown route")
	}
	if code, _ := post("imds", `{"instance":"`+id+`"}`); code != 200 {
		t.Error("imds")
	}
	var buf bytes.Buffer
	buf.WriteString(`{"state":"terminated","after":"1ms"}`)
	if code, out := post("instances/"+id+"/state", buf.String()); code != 200 {
		t.Errorf("schedule termination: %d %v", code, out)
	}
}

// TestAddInstanceRollback: a failed AddInstance leaves no addresses, IDs or
// prefixes behind.
func TestAddInstanceRollback(t *testing.T) {
	sim, _ := newTestSim(t, Options{})
	before := sim.State()
	_, err := sim.AddInstance(Instance{ID: "i-0fedcba9876543210", Subnet: "subnet-0aaaaaaaaaaaaaaa1", ENIs: []ENI{
		{ID: "eni-0fedcba9876543210", DeviceIndex: 0, IPv6PrefixCount: 1, PrivateIPs: []string{"10.0.1.77"}},
		{DeviceIndex: 1, IPv6Prefixes: []string{"2600:1f18:4000:a901:1234::/80"}}, // taken by idPre
	}})
	if err == nil {
		t.Fatal("AddInstance with a taken prefix succeeded")
	}
	after := sim.State()
	if len(after.Instances) != len(before.Instances) || !reflect.DeepEqual(after.Subnets[0], before.Subnets[0]) {
		t.Errorf("failed add left state behind: %+v", after.Subnets[0])
	}
	id, err := sim.AddInstance(Instance{ID: "i-0fedcba9876543210", Subnet: "subnet-0aaaaaaaaaaaaaaa1", ENIs: []ENI{
		{ID: "eni-0fedcba9876543210", PrivateIPs: []string{"10.0.1.77"}, IPv6PrefixCount: 1}}})
	if err != nil || id != "i-0fedcba9876543210" {
		t.Fatalf("retry with the same IDs and address: %v", err)
	}
}
