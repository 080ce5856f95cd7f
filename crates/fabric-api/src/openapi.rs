//! The OpenAPI document, generated from the handlers' annotations and the
//! JSON types' schemas.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{batch, cluster, jobs, schedules, stream, tasks, types, uploads};

#[derive(OpenApi)]
#[openapi(
    info(title = "Fabric", description = "Submit and follow tasks on a Fabric cluster. Every /api/v1 route but this document needs `Authorization: Bearer TOKEN` (`fabric token create --role read|submit|admin`)."),
    paths(
        uploads::module, uploads::blob,
        tasks::create, batch::create, tasks::list, tasks::get, tasks::output, tasks::files, tasks::cancel, tasks::retry,
        jobs::create, jobs::list, jobs::get, jobs::cancel, jobs::retry,
        schedules::create, schedules::list, schedules::get, schedules::pause, schedules::resume,
        schedules::run_now, schedules::remove,
        stream::task_events, stream::cluster_events,
        cluster::workers, cluster::members, cluster::stats, cluster::token, cluster::health, cluster::metrics,
    ),
    components(schemas(
        types::NewTask, types::BlobRefJson, types::StagedFileJson, types::LimitsJson, types::PriorityJson,
        types::Created, types::NewTasks, types::CreatedMany, types::Uploaded, types::TaskView, types::AttemptView, types::LimitsView, types::TaskPage,
        types::OutputView, types::OutputFileView, types::WorkerView, types::MemberJson, types::Stats, types::Health, types::KeyHealth, types::GroupHealth,
        types::StateFilter, types::TokenView,
        types::NewJob, types::NewStep, types::EachItemJson, types::JobCreated, types::StepCreated,
        types::JobJson, types::StepJson, types::StepTaskJson, types::JobPage, types::JobTouched,
        types::NewSchedule, types::ScheduleJson, types::ScheduleRunJson, super::error::ErrorResponse, super::error::ErrorDetail,
    )),
    modifiers(&Bearer),
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, built once.
fn doc() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The OpenAPI document (no token needed).
pub(crate) async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(doc())
}
