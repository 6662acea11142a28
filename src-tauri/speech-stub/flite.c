/*
 * Berth Desktop's stand-in for flite, the speech synthesiser libwebkit2gtk links for the Web
 * Speech API (see src/speech.rs for why and when the app puts it on its library path).
 *
 * It defines the functions WebKitGTK calls (src/speech.rs: STUB_SYMBOLS): four voices that
 * say nothing. speechSynthesis still lists them and an utterance ends at once, silently; the
 * app's page does not speak. The structs follow flite 2.x's public layout (cst_voice,
 * cst_wave) as far as WebKit reads them: a voice's name, a wave's rate, length and samples.
 * Built with -nostdlib: it needs nothing, not even libc.
 */

struct berth_voice {
    const char *name;
    void *features;
    void *ffunctions;
    void *utt_init;
};

struct berth_wave {
    const char *type;
    int sample_rate;
    int num_samples;
    int num_channels;
    short *samples;
};

static struct berth_voice voice_awb = { "awb", 0, 0, 0 };
static struct berth_voice voice_kal = { "kal", 0, 0, 0 };
static struct berth_voice voice_rms = { "rms", 0, 0, 0 };
static struct berth_voice voice_slt = { "slt", 0, 0, 0 };

static short no_samples[1];

/* One silent wave, handed out for every utterance (WebKit synthesises on one thread). */
static struct berth_wave silence = { "riff", 16000, 0, 1, no_samples };

int flite_init(void) { return 0; }

int flite_add_lang(const char *name, void (*lang_init)(void *), void *(*lex_init)(void))
{
    (void)name;
    (void)lang_init;
    (void)lex_init;
    return 0;
}

void usenglish_init(void *voice) { (void)voice; }

void *cmulex_init(void) { return 0; }

void *register_cmu_us_awb(const char *voxdir) { (void)voxdir; return &voice_awb; }
void *register_cmu_us_kal(const char *voxdir) { (void)voxdir; return &voice_kal; }
void *register_cmu_us_rms(const char *voxdir) { (void)voxdir; return &voice_rms; }
void *register_cmu_us_slt(const char *voxdir) { (void)voxdir; return &voice_slt; }

/* The voices and the wave are static: nothing to free. */
void delete_voice(void *voice) { (void)voice; }
void delete_wave(void *wave) { (void)wave; }

void *flite_text_to_wave(const char *text, void *voice)
{
    (void)text;
    (void)voice;
    silence.sample_rate = 16000;
    silence.num_samples = 0;
    return &silence;
}

void cst_wave_resample(void *wave, int sample_rate)
{
    if (wave)
        ((struct berth_wave *)wave)->sample_rate = sample_rate;
}
