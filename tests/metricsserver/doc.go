// Package metricsserver checks, with metrics-server's own node address
// resolver, that the Nodes the node controller produces lead metrics-server
// to the IPv6 address. It is a separate module so that the main go.mod does
// not depend on metrics-server.
package metricsserver
