/* MP_EXPORT: a function the loader (_native.py) finds in the native library through ctypes. */
#ifndef MODELPILOT_DRIFT_EXPORT_H
#define MODELPILOT_DRIFT_EXPORT_H
#if defined(_WIN32)
#define MP_EXPORT __declspec(dllexport)
#else
#define MP_EXPORT __attribute__((visibility("default")))
#endif
#endif
