package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// sdkOps holds the EC2 operations the client calls, as method values of the
// SDK client. The SDK client itself is never stored in a struct or passed
// as an interface: the binary links reflection by method name (text/template,
// through cobra), so once *ec2.Client is reachable from an interface value
// the linker keeps all ~800 of its operations, about 40 MB of the binary.
type sdkOps struct {
	DescribeInstances        func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeSubnets          func(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeInstanceTopology func(context.Context, *ec2.DescribeInstanceTopologyInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTopologyOutput, error)
	AssignIpv6Addresses      func(context.Context, *ec2.AssignIpv6AddressesInput, ...func(*ec2.Options)) (*ec2.AssignIpv6AddressesOutput, error)
	CreateTags               func(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags               func(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)

	DescribeSecurityGroups          func(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	AuthorizeSecurityGroupIngress   func(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress      func(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	ModifyNetworkInterfaceAttribute func(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
}

func newSDKOps(c *ec2.Client) sdkOps {
	return sdkOps{
		DescribeInstances:        c.DescribeInstances,
		DescribeSubnets:          c.DescribeSubnets,
		DescribeInstanceTopology: c.DescribeInstanceTopology,
		AssignIpv6Addresses:      c.AssignIpv6Addresses,
		CreateTags:               c.CreateTags,
		DeleteTags:               c.DeleteTags,

		DescribeSecurityGroups:          c.DescribeSecurityGroups,
		AuthorizeSecurityGroupIngress:   c.AuthorizeSecurityGroupIngress,
		RevokeSecurityGroupIngress:      c.RevokeSecurityGroupIngress,
		ModifyNetworkInterfaceAttribute: c.ModifyNetworkInterfaceAttribute,
	}
}

// describeInstancesFunc adapts a DescribeInstances method value to the
// SDK paginator's client interface.
type describeInstancesFunc func(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)

func (f describeInstancesFunc) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return f(ctx, in, opts...)
}
