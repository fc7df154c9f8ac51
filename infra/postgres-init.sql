-- The databases of the server stack (same names as `evenflow stack up` creates locally):
-- MLflow's tracking and registry store, MLflow's basic-auth users, and Prefect's API.
CREATE DATABASE evenflow_mlflow;
CREATE DATABASE evenflow_mlflow_auth;
CREATE DATABASE evenflow_prefect;
