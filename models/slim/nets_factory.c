/* models/slim/nets_factory.c — slim's nets/nets_factory.py: model name -> definition, with
 * slim's default image sizes and the defaults each definition takes (dropout keep probability,
 * the usual dataset's class count and channels when the caller gives none). net_create builds
 * and plans; net_destroy frees. */
#include <stdlib.h>
#include <string.h>

#include "models/slim/net_impl.h"

typedef enum net_family {
    FAMILY_VGG, FAMILY_RESNET_V1, FAMILY_RESNET_V2, FAMILY_LENET, FAMILY_CIFARNET,
    FAMILY_INCEPTION_V1, FAMILY_INCEPTION_V3, FAMILY_COUNT
} net_family;

typedef struct factory_entry {
    const char *name;
    net_family family;
    int image_size;     /* default_image_size */
    int num_classes;    /* the usual dataset's (ImageNet with background 1001, MNIST/CIFAR-10) */
    int channels;
    float keep_prob;    /* dropout_keep_prob default of the definition */
} factory_entry;

static const factory_entry entries[] = {
    {"vgg_a", FAMILY_VGG, 224, 1001, 3, 0.5f},
    {"vgg_16", FAMILY_VGG, 224, 1001, 3, 0.5f},
    {"vgg_19", FAMILY_VGG, 224, 1001, 3, 0.5f},
    {"resnet_v1_50", FAMILY_RESNET_V1, 224, 1001, 3, 1.0f},
    {"resnet_v1_101", FAMILY_RESNET_V1, 224, 1001, 3, 1.0f},
    {"resnet_v1_152", FAMILY_RESNET_V1, 224, 1001, 3, 1.0f},
    {"resnet_v1_200", FAMILY_RESNET_V1, 224, 1001, 3, 1.0f},
    {"resnet_v2_50", FAMILY_RESNET_V2, 224, 1001, 3, 1.0f},
    {"resnet_v2_101", FAMILY_RESNET_V2, 224, 1001, 3, 1.0f},
    {"resnet_v2_152", FAMILY_RESNET_V2, 224, 1001, 3, 1.0f},
    {"resnet_v2_200", FAMILY_RESNET_V2, 224, 1001, 3, 1.0f},
    {"lenet", FAMILY_LENET, 28, 10, 1, 0.5f},
    {"cifarnet", FAMILY_CIFARNET, 32, 10, 3, 0.5f},
    {"inception_v1", FAMILY_INCEPTION_V1, 224, 1001, 3, 0.8f},
    {"inception_v3", FAMILY_INCEPTION_V3, 299, 1001, 3, 0.8f},
};

static const char *const model_names[] = {
    "vgg_a", "vgg_16", "vgg_19", "resnet_v1_50", "resnet_v1_101", "resnet_v1_152",
    "resnet_v1_200", "resnet_v2_50", "resnet_v2_101", "resnet_v2_152", "resnet_v2_200", "lenet",
    "cifarnet", "inception_v1", "inception_v3", NULL,
};
_Static_assert(SB_ARRAY_LEN(model_names) == SB_ARRAY_LEN(entries) + 1, "model names");

const char *const *net_model_names(void) { return model_names; }

static const factory_entry *lookup(const char *name) {
    for (size_t i = 0; i < SB_ARRAY_LEN(entries); i++)
        if (!strcmp(entries[i].name, name)) return &entries[i];
    return NULL;
}

int net_default_image_size(const char *name) {
    const factory_entry *e = lookup(name);
    return e ? e->image_size : 0;
}

int net_create(net **out, const char *name, const net_options *opt, sb_err *err) {
    *out = NULL;
    const factory_entry *e = name ? lookup(name) : NULL;
    if (!e) {
        char list[512] = "";
        for (size_t i = 0; i < SB_ARRAY_LEN(entries); i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, entries[i].name, sizeof list - strlen(list) - 1);
        }
        return sb_err_set(err, SB_E_NOTFOUND, "Name of network unknown %s (known: %s)",
                          name ? name : "(null)", list);
    }
    net_options o = opt ? *opt : (net_options){0};
    if (o.num_classes <= 0) o.num_classes = e->num_classes;
    if (o.image_size <= 0) o.image_size = e->image_size;
    if (o.image_channels <= 0) o.image_channels = e->channels;
    if (o.batch_size <= 0) o.batch_size = 1;
    if (o.dropout_keep_prob <= 0) o.dropout_keep_prob = e->keep_prob;

    net *n = sb_xcalloc(1, sizeof *n);
    n->model = sb_xstrdup(name);
    n->opt = o;
    n->input = n->logits = n->aux_logits = -1;
    switch (e->family) {
    case FAMILY_VGG: build_vgg(n, name); break;
    case FAMILY_RESNET_V1: build_resnet_v1(n, name); break;
    case FAMILY_RESNET_V2: build_resnet_v2(n, name); break;
    case FAMILY_LENET: build_lenet(n); break;
    case FAMILY_CIFARNET: build_cifarnet(n); break;
    case FAMILY_INCEPTION_V1: build_inception_v1(n); break;
    case FAMILY_INCEPTION_V3: build_inception_v3(n); break;
    case FAMILY_COUNT: break;
    }
    if (!n->error && n->logits >= 0) {
        const net_tensor *t = &n->tensors[n->logits];
        if (t->H != 1 || t->W != 1)
            sb_err_set(&n->err, n->error = SB_E_RANGE,
                       "model %s at image size %d: logits are a %dx%d map, not 1x1 (slim's "
                       "spatial_squeeze needs the default image size %d or one that pools to 1x1)",
                       name, o.image_size, t->H, t->W, e->image_size);
    }
    if (n->error) {
        int code = n->error;
        if (err) *err = n->err;
        net_destroy(n);
        return code;
    }
    SB_ASSERT(n->logits >= 0);
    net_plan(n);
    net_plan_workspace(n);
    *out = n;
    return 0;
}

void net_destroy(net *n) {
    if (!n) return;
    sb_aligned_free(n->params);
    sb_aligned_free(n->grads);
    sb_aligned_free(n->acts);
    sb_aligned_free(n->act_grads);
    sb_aligned_free(n->ws);
    free(n->grad_written);
    free(n->prof);
    net_free_graph(n);
    free(n);
}
