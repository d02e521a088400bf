// Monitoring Reader for the function app's identity on one resource group (main.bicep's monitoredResourceGroups):
// azure_monitor SLIs read the metrics of resources there (endpoints, gateways), and nothing else is granted.
targetScope = 'resourceGroup'

@description('Object id of the managed identity of the function app.')
param principalId string

var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, monitoringReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
