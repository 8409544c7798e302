/*
 * A fake libnvidia-ml.so for tests on machines without an NVIDIA GPU.
 *
 * It exports the NVML entry points the GPU collector reaches through the real
 * `pynvml` module, with the same struct layouts and return codes as NVML, so
 * pynvml's own wrappers, structs and error classes run unchanged. Tests steer
 * it through the `fake_*` functions at the bottom (called with ctypes):
 * GPU count, raw values, which readings answer NOT_SUPPORTED, a GPU that is
 * lost after K calls, a call that hangs until released, queued XID events,
 * and an init failure code (no driver).
 *
 * Every per-device entry point goes through check(), which applies "lost",
 * "hang" and "unsupported" in the order the real driver would surface them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_GPU_IS_LOST = 15,
};

#define MAX_GPUS 16
#define MAX_LINKS 36
#define MAX_MIG 8
#define MAX_EVENTS 256
#define VALUE_NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL

/* Raw values in NVML's own units (mW, mJ, MHz, %, bytes). */
#define KEYS(X)                                   \
    X(uuid, 0)                                    \
    X(name, 0)                                    \
    X(pci, 0)                                     \
    X(serial, 0)                                  \
    X(vbios, 0)                                   \
    X(util_gpu, 50 + g)                           \
    X(util_mem, 30 + g)                           \
    X(enc_util, 5 + g)                            \
    X(dec_util, 7 + g)                            \
    X(mem_total, 85899345920.0)                   \
    X(mem_reserved, 536870912.0)                  \
    X(mem_used, 1073741824.0 * (g + 1))           \
    X(temp, 40 + g)                               \
    X(mem_temp, 50 + g)                           \
    X(power, 250123 + g)                          \
    X(power_limit, 700000)                        \
    X(energy, 123456789 + g)                      \
    X(clock_graphics, 1980)                       \
    X(clock_sm, 1975)                             \
    X(clock_mem, 2619)                            \
    X(clock_video, 1755)                          \
    X(num_fans, 2)                                \
    X(fan, 40)                                    \
    X(reasons_supported, 0x1FF)                   \
    X(reasons_current, 0x5)                       \
    X(pstate, 0)                                  \
    X(ecc_sbe, 3 + g)                             \
    X(ecc_dbe, 1)                                 \
    X(retired_sbe, 2)                             \
    X(retired_dbe, 1)                             \
    X(remap_cor, 4)                               \
    X(remap_unc, 1)                               \
    X(remap_failure, 0)                           \
    X(pcie_replay, 7 + g)                         \
    X(pcie_gen, 5)                                \
    X(pcie_width, 16)                             \
    X(nvlinks, 4)                                 \
    X(nvl_replay, 10)                             \
    X(nvl_recovery, 20)                           \
    X(nvl_crc, 30)                                \
    X(nprocs, 2)                                  \
    X(proc_mem, 104857600.0)                      \
    X(proc_mem_na, 0)                             \
    X(gfx_procs, 0)                               \
    X(process_name, 0)                            \
    X(mig_current, 0)                             \
    X(mig_pending, 0)                             \
    X(max_mig, 7)                                 \
    X(mig_count, 2)                               \
    X(mig_mem_total, 10737418240.0)               \
    X(mig_mem_used, 1073741824.0)                 \
    X(events, 0)

#define ENUM(k, d) K_##k,
enum { KEYS(ENUM) NKEYS };
#define NAME(k, d) #k,
static const char *key_names[NKEYS] = {KEYS(NAME)};

struct dev {
    int magic; /* 0x6770 for a GPU, 0x6d69 for a MIG device */
    int index;
    int mig_index; /* MIG devices: which one */
    struct dev *parent;
};

struct gpu {
    struct dev dev;
    double v[NKEYS];
    unsigned char unsupported[NKEYS];
    long lost_after; /* -1: never; else lost once more than this many calls were made */
    long calls;
    int registered;
    struct dev mig[MAX_MIG];
};

struct xid_event {
    int gpu;
    unsigned long long xid;
};

static struct gpu gpus[MAX_GPUS];
static int n_gpus;
static int init_error;
static long inits, shutdowns, registered, hanging, eventsets;
static int hang_key = -1;
static int hang_released;
static struct xid_event events[MAX_EVENTS];
static int n_events;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static int find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(key_names[i], name) == 0) return i;
    return -1;
}

static struct gpu *gpu_of(void *handle) {
    struct dev *d = handle;
    if (d == NULL) return NULL;
    if (d->magic == 0x6d69) d = d->parent;
    if (d->magic != 0x6770 || d->index < 0 || d->index >= n_gpus) return NULL;
    return &gpus[d->index];
}

/* Lost, then hang, then NotSupported: the order a real driver surfaces them. */
static nvmlReturn_t check(struct gpu *g, int key) {
    if (g == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&mu);
    g->calls++;
    if (g->lost_after >= 0 && g->calls > g->lost_after) {
        pthread_mutex_unlock(&mu);
        return NVML_ERROR_GPU_IS_LOST;
    }
    if (key == hang_key && !hang_released) {
        hanging++;
        pthread_cond_broadcast(&cond);
        while (!hang_released) pthread_cond_wait(&cond, &mu);
        hanging--;
    }
    pthread_mutex_unlock(&mu);
    if (g->unsupported[key]) return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

#define CHECK(h, key)                                          \
    struct gpu *g = gpu_of(h);                                 \
    nvmlReturn_t rc_ = check(g, K_##key);                      \
    if (rc_ != NVML_SUCCESS) return rc_;

#define V(key) (g->v[K_##key])

static void reset_gpu(int i) {
    struct gpu *gp = &gpus[i];
    double g = i;
    memset(gp, 0, sizeof(*gp));
    gp->dev.magic = 0x6770;
    gp->dev.index = i;
    gp->lost_after = -1;
#define DEFAULT(k, d) gp->v[K_##k] = (d);
    KEYS(DEFAULT)
#undef DEFAULT
    (void)g;
    for (int m = 0; m < MAX_MIG; m++) {
        gp->mig[m].magic = 0x6d69;
        gp->mig[m].index = i;
        gp->mig[m].mig_index = m;
        gp->mig[m].parent = &gp->dev;
    }
}

/* ---------------- control API (tests) ---------------- */

void fake_reset(int count) {
    pthread_mutex_lock(&mu);
    n_gpus = count < 0 ? 0 : (count > MAX_GPUS ? MAX_GPUS : count);
    for (int i = 0; i < MAX_GPUS; i++) reset_gpu(i);
    init_error = 0;
    inits = shutdowns = registered = hanging = eventsets = 0;
    hang_key = -1;
    hang_released = 0;
    n_events = 0;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

int fake_set(int gpu, const char *key, double value) {
    int k = find_key(key);
    if (k < 0 || gpu < 0 || gpu >= MAX_GPUS) return -1;
    gpus[gpu].v[k] = value;
    return 0;
}

double fake_get(int gpu, const char *key) {
    int k = find_key(key);
    if (k < 0 || gpu < 0 || gpu >= MAX_GPUS) return -1;
    return gpus[gpu].v[k];
}

int fake_unsupported(int gpu, const char *key) {
    int k = find_key(key);
    if (k < 0 || gpu < 0 || gpu >= MAX_GPUS) return -1;
    gpus[gpu].unsupported[k] = 1;
    return 0;
}

void fake_lost_after(int gpu, long calls) {
    pthread_mutex_lock(&mu);
    gpus[gpu].lost_after = gpus[gpu].calls + calls;
    pthread_mutex_unlock(&mu);
}

void fake_init_error(int code) { init_error = code; }

int fake_hang(const char *key) {
    int k = find_key(key);
    if (k < 0) return -1;
    pthread_mutex_lock(&mu);
    hang_key = k;
    hang_released = 0;
    pthread_mutex_unlock(&mu);
    return 0;
}

void fake_release(void) {
    pthread_mutex_lock(&mu);
    hang_released = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

void fake_push_xid(int gpu, unsigned long long xid) {
    pthread_mutex_lock(&mu);
    if (n_events < MAX_EVENTS) {
        events[n_events].gpu = gpu;
        events[n_events].xid = xid;
        n_events++;
    }
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

long fake_global(const char *name) {
    long out = -1;
    pthread_mutex_lock(&mu);
    if (strcmp(name, "inits") == 0) out = inits;
    else if (strcmp(name, "shutdowns") == 0) out = shutdowns;
    else if (strcmp(name, "registered") == 0) out = registered;
    else if (strcmp(name, "hanging") == 0) out = hanging;
    else if (strcmp(name, "eventsets") == 0) out = eventsets;
    else if (strcmp(name, "pending_events") == 0) out = n_events;
    pthread_mutex_unlock(&mu);
    return out;
}

/* Loaded by name in a subprocess (LD_LIBRARY_PATH), the fake takes its setup from the environment. */
__attribute__((constructor)) static void fake_from_env(void) {
    const char *gpus_env = getenv("FAKE_NVML_GPUS");
    const char *error_env = getenv("FAKE_NVML_INIT_ERROR");
    fake_reset(gpus_env ? atoi(gpus_env) : 1);
    if (error_env) init_error = atoi(error_env);
}

/* ---------------- NVML: library ---------------- */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    if (init_error) return init_error;
    pthread_mutex_lock(&mu);
    inits++;
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&mu);
    shutdowns++;
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    (void)result;
    return "Fake NVML error";
}

static nvmlReturn_t copy_str(char *buf, unsigned int len, const char *s) {
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *buf, unsigned int len) { return copy_str(buf, len, "550.54.15"); }

nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *buf, unsigned int len) {
    char s[64];
    for (int i = 0; i < n_gpus; i++)
        if (gpus[i].unsupported[K_process_name]) return NVML_ERROR_NOT_FOUND;
    snprintf(s, sizeof s, "/opt/app/bin/trainer-%u", pid);
    return copy_str(buf, len, s);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!inits) return NVML_ERROR_UNINITIALIZED;
    *count = (unsigned int)n_gpus;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    if (!inits) return NVML_ERROR_UNINITIALIZED;
    if (index >= (unsigned int)n_gpus) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &gpus[index].dev;
    return NVML_SUCCESS;
}

/* ---------------- NVML: identity ---------------- */

nvmlReturn_t nvmlDeviceGetUUID(void *h, char *buf, unsigned int len) {
    char s[96];
    CHECK(h, uuid);
    snprintf(s, sizeof s, "GPU-fa4e0000-0000-4000-8000-%012d", ((struct dev *)h)->index);
    return copy_str(buf, len, s);
}

nvmlReturn_t nvmlDeviceGetName(void *h, char *buf, unsigned int len) {
    CHECK(h, name);
    return copy_str(buf, len, "NVIDIA H100 80GB HBM3");
}

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *h, nvmlPciInfo_t *pci) {
    CHECK(h, pci);
    memset(pci, 0, sizeof *pci);
    pci->bus = 0x18 + (unsigned int)g->dev.index;
    pci->pciDeviceId = 0x233010de;
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSerial(void *h, char *buf, unsigned int len) {
    char s[30];
    CHECK(h, serial);
    snprintf(s, sizeof s, "165232300%04d", g->dev.index);
    return copy_str(buf, len, s);
}

nvmlReturn_t nvmlDeviceGetVbiosVersion(void *h, char *buf, unsigned int len) {
    CHECK(h, vbios);
    return copy_str(buf, len, "96.00.74.00.01");
}

/* ---------------- NVML: readings ---------------- */

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

nvmlReturn_t nvmlDeviceGetUtilizationRates(void *h, nvmlUtilization_t *u) {
    CHECK(h, util_gpu);
    u->gpu = (unsigned int)V(util_gpu);
    u->memory = (unsigned int)V(util_mem);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(void *h, unsigned int *util, unsigned int *period) {
    CHECK(h, enc_util);
    *util = (unsigned int)V(enc_util);
    *period = 167000;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(void *h, unsigned int *util, unsigned int *period) {
    CHECK(h, dec_util);
    *util = (unsigned int)V(dec_util);
    *period = 167000;
    return NVML_SUCCESS;
}

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

nvmlReturn_t nvmlDeviceGetMemoryInfo(void *h, nvmlMemory_t *m) {
    struct dev *d = h;
    CHECK(h, mem_total);
    if (d->magic == 0x6d69) {
        m->total = (unsigned long long)V(mig_mem_total);
        m->used = (unsigned long long)V(mig_mem_used) * (unsigned long long)(d->mig_index + 1);
    } else {
        m->total = (unsigned long long)V(mem_total);
        m->used = (unsigned long long)V(mem_used);
    }
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *h, nvmlMemory_v2_t *m) {
    if (m->version != 0x02000028) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    CHECK(h, mem_total);
    m->total = (unsigned long long)V(mem_total);
    m->used = (unsigned long long)V(mem_used);
    if (g->unsupported[K_mem_reserved]) {
        /* A driver before 510 has no v2: the caller falls back to v1. */
        return 13; /* NVML_ERROR_FUNCTION_NOT_FOUND */
    }
    m->reserved = (unsigned long long)V(mem_reserved);
    m->free = m->total - m->used - m->reserved;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(void *h, int sensor, unsigned int *temp) {
    CHECK(h, temp);
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
    *temp = (unsigned int)V(temp);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(void *h, unsigned int *mw) {
    CHECK(h, power);
    *mw = (unsigned int)V(power);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *h, unsigned int *mw) {
    CHECK(h, power_limit);
    *mw = (unsigned int)V(power_limit);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetClockInfo(void *h, int type, unsigned int *mhz) {
    static const int keys[4] = {K_clock_graphics, K_clock_sm, K_clock_mem, K_clock_video};
    struct gpu *g = gpu_of(h);
    nvmlReturn_t rc;
    if (type < 0 || type > 3) return NVML_ERROR_INVALID_ARGUMENT;
    rc = check(g, keys[type]);
    if (rc != NVML_SUCCESS) return rc;
    *mhz = (unsigned int)g->v[keys[type]];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNumFans(void *h, unsigned int *n) {
    CHECK(h, num_fans);
    *n = (unsigned int)V(num_fans);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFanSpeed_v2(void *h, unsigned int fan, unsigned int *speed) {
    CHECK(h, fan);
    if (fan >= (unsigned int)V(num_fans)) return NVML_ERROR_INVALID_ARGUMENT;
    *speed = (unsigned int)V(fan) + fan;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSupportedClocksEventReasons(void *h, unsigned long long *mask) {
    CHECK(h, reasons_supported);
    *mask = (unsigned long long)V(reasons_supported);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(void *h, unsigned long long *mask) {
    CHECK(h, reasons_current);
    *mask = (unsigned long long)V(reasons_current);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPerformanceState(void *h, int *p) {
    CHECK(h, pstate);
    *p = (int)V(pstate);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(void *h, unsigned int *gen) {
    CHECK(h, pcie_gen);
    *gen = (unsigned int)V(pcie_gen);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(void *h, unsigned int *width) {
    CHECK(h, pcie_width);
    *width = (unsigned int)V(pcie_width);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(void *h, unsigned int link, int *active) {
    CHECK(h, nvlinks);
    if (V(nvlinks) <= 0) return NVML_ERROR_NOT_SUPPORTED;
    if (link >= 18) return NVML_ERROR_INVALID_ARGUMENT;
    *active = link < (unsigned int)V(nvlinks);
    return NVML_SUCCESS;
}

/* ---------------- NVML: field values ---------------- */

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    unsigned int valueType;
    unsigned int nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

static int field_key(unsigned int id) {
    switch (id) {
    case 82: return K_mem_temp;
    case 83: return K_energy;
    case 94: return K_pcie_replay;
    case 3: return K_ecc_sbe;
    case 4: return K_ecc_dbe;
    case 29: return K_retired_sbe;
    case 30: return K_retired_dbe;
    case 142: return K_remap_cor;
    case 143: return K_remap_unc;
    case 145: return K_remap_failure;
    case 161: return K_nvl_replay;
    case 162: return K_nvl_recovery;
    case 163: return K_nvl_crc;
    default: return -1;
    }
}

nvmlReturn_t nvmlDeviceGetFieldValues(void *h, int count, nvmlFieldValue_t *values) {
    struct gpu *g = gpu_of(h);
    nvmlReturn_t rc = check(g, K_uuid);
    struct timespec ts;
    if (rc != NVML_SUCCESS) return rc;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *f = &values[i];
        int k = field_key(f->fieldId);
        f->timestamp = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        f->latencyUsec = 0;
        if (k < 0) {
            f->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT;
            continue;
        }
        if (g->unsupported[k]) {
            f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        if (f->fieldId >= 161 && f->fieldId <= 163 && f->scopeId >= (unsigned int)V(nvlinks)) {
            f->nvmlReturn = NVML_ERROR_INVALID_ARGUMENT;
            continue;
        }
        f->nvmlReturn = NVML_SUCCESS;
        if (f->fieldId == 82) {
            /* NVML reports memory temperature as a signed int. */
            f->valueType = 5;
            f->value.siVal = (int)g->v[k];
        } else if (f->fieldId == 145) {
            f->valueType = 1;
            f->value.uiVal = (unsigned int)g->v[k];
        } else {
            f->valueType = 3;
            f->value.ullVal = (unsigned long long)g->v[k];
            if (f->fieldId >= 161 && f->fieldId <= 163) f->value.ullVal += f->scopeId;
        }
    }
    return NVML_SUCCESS;
}

/* ---------------- NVML: processes ---------------- */

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

static nvmlReturn_t list_procs(struct gpu *g, unsigned int n, unsigned int base, unsigned int *count,
                               nvmlProcessInfo_t *infos) {
    if (n == 0) {
        *count = 0;
        return NVML_SUCCESS;
    }
    if (infos == NULL || *count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < n; i++) {
        infos[i].pid = base + (unsigned int)g->dev.index * 100 + i;
        infos[i].usedGpuMemory = g->v[K_proc_mem_na] ? VALUE_NOT_AVAILABLE
                                                     : (unsigned long long)g->v[K_proc_mem] * (i + 1);
        infos[i].gpuInstanceId = 0xFFFFFFFF;
        infos[i].computeInstanceId = 0xFFFFFFFF;
    }
    *count = n;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void *h, unsigned int *count, nvmlProcessInfo_t *infos) {
    CHECK(h, nprocs);
    return list_procs(g, (unsigned int)V(nprocs), 1000, count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(void *h, unsigned int *count, nvmlProcessInfo_t *infos) {
    CHECK(h, gfx_procs);
    return list_procs(g, (unsigned int)V(gfx_procs), 5000, count, infos);
}

/* ---------------- NVML: MIG ---------------- */

nvmlReturn_t nvmlDeviceGetMigMode(void *h, unsigned int *current, unsigned int *pending) {
    CHECK(h, mig_current);
    *current = (unsigned int)V(mig_current);
    *pending = (unsigned int)V(mig_pending);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *count) {
    CHECK(h, max_mig);
    *count = (unsigned int)V(max_mig);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int index, void **mig) {
    CHECK(h, mig_current);
    if (!V(mig_current)) return NVML_ERROR_INVALID_ARGUMENT;
    if (index >= (unsigned int)V(max_mig) || index >= MAX_MIG) return NVML_ERROR_INVALID_ARGUMENT;
    if (index >= (unsigned int)V(mig_count)) return NVML_ERROR_NOT_FOUND;
    *mig = &g->mig[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id) {
    struct dev *d = h;
    CHECK(h, mig_current);
    if (d->magic != 0x6d69) return NVML_ERROR_NOT_SUPPORTED;
    *id = (unsigned int)d->mig_index + 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(void *h, unsigned int *id) {
    struct dev *d = h;
    CHECK(h, mig_current);
    if (d->magic != 0x6d69) return NVML_ERROR_NOT_SUPPORTED;
    *id = 0;
    return NVML_SUCCESS;
}

/* ---------------- NVML: events ---------------- */

typedef struct {
    void *device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

struct eventset {
    int live;
};
static struct eventset sets[8];

nvmlReturn_t nvmlEventSetCreate(struct eventset **set) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < 8; i++) {
        if (!sets[i].live) {
            sets[i].live = 1;
            eventsets++;
            *set = &sets[i];
            pthread_mutex_unlock(&mu);
            return NVML_SUCCESS;
        }
    }
    pthread_mutex_unlock(&mu);
    return 20; /* NVML_ERROR_MEMORY */
}

nvmlReturn_t nvmlEventSetFree(struct eventset *set) {
    pthread_mutex_lock(&mu);
    set->live = 0;
    eventsets--;
    for (int i = 0; i < n_gpus; i++) gpus[i].registered = 0;
    registered = 0;
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(void *h, unsigned long long types, struct eventset *set) {
    CHECK(h, events);
    (void)set;
    if (types != 0x8ULL) return NVML_ERROR_NOT_SUPPORTED;
    pthread_mutex_lock(&mu);
    g->registered = 1;
    registered++;
    pthread_mutex_unlock(&mu);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(struct eventset *set, nvmlEventData_t *data, unsigned int timeout_ms) {
    struct timespec deadline;
    (void)set;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    for (;;) {
        for (int i = 0; i < n_events; i++) {
            int gi = events[i].gpu;
            if (gi < 0 || gi >= n_gpus || !gpus[gi].registered) continue;
            data->device = &gpus[gi].dev;
            data->eventType = 0x8ULL;
            data->eventData = events[i].xid;
            data->gpuInstanceId = 0xFFFFFFFF;
            data->computeInstanceId = 0xFFFFFFFF;
            memmove(&events[i], &events[i + 1], sizeof(events[0]) * (size_t)(n_events - i - 1));
            n_events--;
            pthread_mutex_unlock(&mu);
            return NVML_SUCCESS;
        }
        if (pthread_cond_timedwait(&cond, &mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&mu);
            return NVML_ERROR_TIMEOUT;
        }
    }
}
