package main

import (
	"k8s.io/cloud-provider/app"
)

// startNodeController starts the cloud-node controller. Until
// pkg/controllers/node lands it is the framework's controller.
var startNodeController app.InitFuncConstructor = app.StartCloudNodeControllerWrapper
