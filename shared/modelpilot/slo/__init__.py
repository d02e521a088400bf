"""SLO exporters: Prometheus recording and alerting rules, CloudWatch composite alarms, OpenSLO documents."""
